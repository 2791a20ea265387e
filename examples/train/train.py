"""A "training" that writes a tiny weights file."""

import tempfile

from cog import BaseModel, Input, Path


class TrainingOutput(BaseModel):
    weights: Path


def train(
    steps: int = Input(description="Number of training steps", default=3, ge=1, le=100),
    suffix: str = Input(description="Text the trained model appends", default="v1"),
) -> TrainingOutput:
    for step in range(steps):
        print(f"step {step + 1}/{steps}")
    out = Path(tempfile.mkdtemp()) / "weights.txt"
    out.write_text(f"suffix={suffix}\n", encoding="utf-8")
    return TrainingOutput(weights=out)
