"""The command line every service module shares (``python -m cogplane.<service> ...``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from fastapi import FastAPI

from cogplane.common import migrations
from cogplane.common.config import ServiceSettings
from cogplane.common.service import serve

S = TypeVar("S", bound=ServiceSettings)


def service_main(
    create_app: Callable[[S], FastAPI], settings_type: type[S], schema: str | None, main_file: str
) -> None:
    """Serve the app, or apply, check or autogenerate the service's migrations."""
    parser = argparse.ArgumentParser(prog=f"python -m {Path(main_file).parent.name}")
    parser.add_argument(
        "command",
        nargs="?",
        default="serve",
        choices=["serve", "migrate", "check-migrations", "revision"],
    )
    parser.add_argument("-m", "--message", default="change", help="Message of a new revision.")
    args = parser.parse_args()
    settings = settings_type()
    if args.command == "serve":
        serve(create_app(settings), settings)
        return
    if schema is None:
        return  # a service without tables has nothing to migrate
    location = Path(main_file).parent / "migrations"
    url = settings.database_url.get_secret_value()
    if args.command == "migrate":
        migrations.upgrade(location, url, schema)
    elif args.command == "revision":
        migrations.revision(location, url, schema, args.message)
    else:
        migrations.check(location, url, schema)
