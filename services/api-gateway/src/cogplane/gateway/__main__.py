"""``python -m cogplane.gateway``."""

from cogplane.common.cli import service_main
from cogplane.gateway.app import create_app
from cogplane.gateway.config import GatewaySettings

if __name__ == "__main__":
    service_main(create_app, GatewaySettings, None, __file__)
