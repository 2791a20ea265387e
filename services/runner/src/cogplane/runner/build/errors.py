"""The error every build step raises: its message is what the person who pushed reads."""

from __future__ import annotations

from cogplane.common.errors import CogplaneError


class BuildError(CogplaneError):
    """A build step failed; the message says why, with the relevant output."""

    status = 422
    title = "Build failed"
