"""``python -m cogplane.runner``."""

from cogplane.common.cli import service_main
from cogplane.runner.app import create_app
from cogplane.runner.config import RunnerSettings

if __name__ == "__main__":
    service_main(create_app, RunnerSettings, None, __file__)
