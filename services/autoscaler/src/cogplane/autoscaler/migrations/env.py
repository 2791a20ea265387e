"""Alembic environment of the autoscaler schema."""

from alembic import context

from cogplane.autoscaler.models import Base
from cogplane.common.migrations import run_env

run_env(context, Base.metadata)
