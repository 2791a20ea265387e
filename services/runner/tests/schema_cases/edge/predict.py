# ruff: noqa: B008  -- Cog declares inputs as `Input(...)` calls in argument defaults.
"""Every input rule of Cog's schema generator that is easy to get wrong, in one predictor."""

from typing import Optional

import cog
from cog import BaseModel, BaseRunner, Input, Path, Secret

print("printed while being imported")  # must not end up in the generator's JSON


class Output(BaseModel):
    text: str
    score: float
    note: Optional[str]  # noqa: UP045 -- the typing.Optional spelling is part of what is tested


class Predictor(BaseRunner):
    @cog.streaming
    def run(
        self,
        seed: int = Input(
            description="Required: a None default on an int is no default", default=None
        ),
        maybe: Optional[str] = Input(description="Nullable, no default"),  # noqa: UP045 -- tested
        maybe_none: str | None = Input(default=None),
        raw_none: int = None,  # noqa: RUF013 -- tested: a raw None default on an int
        raw_count: int = 3,
        api_key: Secret = Input(default=None),
        key_required: Secret = Input(description="Required secret"),
        image: Path = Input(description="An image", accept="image/*"),
        either: int | str = Input(description="A union"),
        either_or_none: int | str | None = Input(default=None),
        word: str = Input(default="ab", max_length=5, regex="^[a-z]+$", deprecated=True),
        ratio: float = Input(default=1, ge=0.5, le=10.0),
        mode: int = Input(choices=[1, 2, 4], default=2),
        files: list[Path] = Input(description="Some files"),
    ) -> Output:
        return Output(text=str(seed), score=ratio, note=None)
