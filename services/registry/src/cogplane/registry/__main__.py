"""``python -m cogplane.registry [serve|migrate|check-migrations|bootstrap USER ORG]``."""

from __future__ import annotations

import sys

from cogplane.common.cli import service_main
from cogplane.registry import bootstrap
from cogplane.registry.app import create_app
from cogplane.registry.config import RegistrySettings
from cogplane.registry.models import SCHEMA

if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "bootstrap":
        bootstrap.main(sys.argv[2], sys.argv[3])
    else:
        service_main(create_app, RegistrySettings, SCHEMA, __file__)
