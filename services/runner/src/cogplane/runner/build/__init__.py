"""Building pushed Cog projects into versions: cog.yaml, cached environments, the schema."""
