"""``python -m cogplane.scheduler [serve|migrate|check-migrations|revision]``."""

from cogplane.common.cli import service_main
from cogplane.scheduler.app import create_app
from cogplane.scheduler.config import SchedulerSettings
from cogplane.scheduler.models import SCHEMA

if __name__ == "__main__":
    service_main(create_app, SchedulerSettings, SCHEMA, __file__)
