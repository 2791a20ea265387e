"""The catalog domain of the registry: models, versions and the builds that make versions."""
