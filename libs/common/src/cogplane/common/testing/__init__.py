"""Test support: fixtures that start real PostgreSQL and NATS servers."""
