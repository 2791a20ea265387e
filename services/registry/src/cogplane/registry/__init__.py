"""The registry: accounts, organizations, API tokens (and later models, versions, deployments)."""
