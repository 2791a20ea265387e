"""Deployments: fixed endpoints of a model with their own instances, and their numbered releases."""
