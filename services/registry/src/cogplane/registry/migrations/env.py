"""Alembic environment of the registry schema."""

from alembic import context

from cogplane.common.migrations import run_env
from cogplane.registry.models import Base

run_env(context, Base.metadata)
