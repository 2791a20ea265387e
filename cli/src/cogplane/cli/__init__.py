"""The ``cogplane`` command line."""
