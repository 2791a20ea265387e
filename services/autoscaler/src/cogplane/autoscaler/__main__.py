"""``python -m cogplane.autoscaler [serve|migrate|check-migrations|revision]``."""

from cogplane.autoscaler.app import create_app
from cogplane.autoscaler.config import AutoscalerSettings
from cogplane.autoscaler.models import SCHEMA
from cogplane.common.cli import service_main

if __name__ == "__main__":
    service_main(create_app, AutoscalerSettings, SCHEMA, __file__)
