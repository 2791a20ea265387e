"""Greets someone with a prefix loaded once in setup().

Written in the classic Cog style (BasePredictor + predict), which Cog 0.23 still runs.
"""

from pathlib import Path

from cog import BasePredictor, Input


class Predictor(BasePredictor):
    def setup(self) -> None:
        # Relative to the project root: Cog runs models with CWD = the project directory.
        self.prefix = Path("prefix.txt").read_text(encoding="utf-8").strip()

    def predict(self, name: str = Input(description="Who to greet", default="world")) -> str:
        print(f"greeting {name}")
        return f"{self.prefix} {name}!"
