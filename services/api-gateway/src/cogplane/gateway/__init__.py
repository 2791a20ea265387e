"""The api-gateway: Replicate-compatible ``/v1`` API, auth, translation of HTTP into NATS calls."""
