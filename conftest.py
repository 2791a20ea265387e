"""Every test session gets a real PostgreSQL and a real NATS server (started on first use)."""

pytest_plugins = ["cogplane.common.testing.fixtures"]
