"""A model whose setup() always fails: the instance must end up SETUP_FAILED."""

from cog import BaseRunner


class Predictor(BaseRunner):
    def setup(self) -> None:
        print("loading weights")
        raise RuntimeError("weights not found: weights/model.bin")

    def run(self, prompt: str) -> str:
        return prompt
