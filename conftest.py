"""Every test session gets a real PostgreSQL and a real NATS server (started on first use)."""

pytest_plugins = ["cogplane.common.testing.fixtures"]


def pytest_terminal_summary(terminalreporter: object) -> None:
    """Say where the browser tests left their screenshots."""
    from pathlib import Path

    shots = Path(__file__).parent / "artifacts" / "screenshots"
    found = sorted(shots.glob("*.png")) if shots.is_dir() else []
    if found:
        write = getattr(terminalreporter, "write_line")  # noqa: B009 - pytest's reporter
        write(f"screenshots of the web app ({len(found)}): {shots}")
