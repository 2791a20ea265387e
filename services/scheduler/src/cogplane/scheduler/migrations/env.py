"""Alembic environment of the scheduler schema."""

from alembic import context

from cogplane.common.migrations import run_env
from cogplane.scheduler.models import Base

run_env(context, Base.metadata)
