"""The autoscaler: decides how many instances each target needs, and records why."""
