"""Returns its input straight away: measures the platform's own overhead."""

from cog import BaseRunner, Input


class Predictor(BaseRunner):
    def run(self, value: str = Input(description="Echoed back unchanged", default="")) -> str:
        return value
