"""``python -m cogplane.cli``."""

from cogplane.cli.main import main

main()
