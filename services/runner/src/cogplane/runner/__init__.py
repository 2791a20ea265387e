"""The runner: a node agent that builds version environments and runs Cog instances."""
