"""Shared building blocks of the services: contracts, settings, db, messaging, telemetry."""
