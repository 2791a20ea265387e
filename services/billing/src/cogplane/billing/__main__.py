"""``python -m cogplane.billing [serve|migrate|check-migrations|revision]``."""

from cogplane.billing.app import create_app
from cogplane.billing.config import BillingSettings
from cogplane.billing.models import SCHEMA
from cogplane.common.cli import service_main

if __name__ == "__main__":
    service_main(create_app, BillingSettings, SCHEMA, __file__)
