"""A class-based trainer whose input names clash with the predictor's enum components."""

from cog import Input


class Trainer:
    def setup(self) -> None:
        self.ready = True

    def train(
        self,
        mode: str = Input(choices=["fast", "slow"], default="fast"),
        epochs: int = Input(default=1, ge=1),
    ) -> str:
        return f"{mode} x{epochs}"
