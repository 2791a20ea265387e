"""Serves the weights that train.py produced (or the untrained default)."""

import base64
from pathlib import Path

from cog import BaseRunner, Input


def _read_weights(weights: str) -> str:
    # Cog passes COG_WEIGHTS through as a raw string: a local path or a data: URL here.
    if weights.startswith("data:"):
        return base64.b64decode(weights.split(",", 1)[1]).decode("utf-8")
    return Path(weights).read_text(encoding="utf-8")


class Predictor(BaseRunner):
    def setup(self, weights: str | None = None) -> None:
        text = _read_weights(weights) if weights else "suffix=untrained\n"
        self.suffix = text.strip().removeprefix("suffix=")

    def run(self, prompt: str = Input(description="Text to suffix")) -> str:
        return f"{prompt} ({self.suffix})"
