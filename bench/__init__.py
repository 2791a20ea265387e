"""Benchmarks of the platform (``make bench``)."""
