"""Model instances on this node: coglet processes the runner starts, feeds, watches and stops."""
