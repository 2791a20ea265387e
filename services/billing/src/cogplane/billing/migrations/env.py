"""Alembic environment of the billing schema."""

from alembic import context

from cogplane.billing.models import Base
from cogplane.common.migrations import run_env

run_env(context, Base.metadata)
