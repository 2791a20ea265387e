"""Typed contracts of every NATS message: events (JetStream) and request-reply calls."""
