"""Webhooks of predictions (signing secrets, throttled intermediate events, durable completion) and
the key of stream URLs."""
