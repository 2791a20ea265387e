"""The web app: server-rendered pages on the same calls as the ``/v1`` API, plus small scripts."""
