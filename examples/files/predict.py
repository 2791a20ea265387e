# ruff: noqa: B008  -- Cog declares inputs as `Input(...)` calls in argument defaults.
"""Uppercases a text file into a new file."""

import tempfile

from cog import BaseRunner, Input, Path


class Predictor(BaseRunner):
    def run(
        self,
        file: Path = Input(description="A UTF-8 text file (URL or data: URL)", accept="text/*"),
    ) -> Path:
        text = file.read_text(encoding="utf-8")
        # Write to a fresh directory: Cog deletes the downloaded input once the prediction ends.
        out = Path(tempfile.mkdtemp()) / "upper.txt"
        out.write_text(text.upper(), encoding="utf-8")
        return out
