"""Billing: meters setup, idle and processing time from the event stream."""
