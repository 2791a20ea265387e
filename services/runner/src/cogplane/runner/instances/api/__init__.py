"""HTTP routes of the instance backend."""
