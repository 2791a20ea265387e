"""Doubles a number, and fails the prediction for negative input."""

from cog import BaseRunner, Input


class Predictor(BaseRunner):
    def run(self, x: int = Input(description="A number; negative values make run() raise")) -> int:
        if x < 0:
            print("about to raise")
            raise ValueError("x must be non-negative")
        return x * 2
