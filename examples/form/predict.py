# ruff: noqa: B008  -- Cog declares inputs as `Input(...)` calls in argument defaults.
"""Formats text; exercises every kind of input constraint Cog puts in its schema."""

from cog import BaseRunner, Input, Secret


class Predictor(BaseRunner):
    def run(
        self,
        text: str = Input(description="Text to format", min_length=1, max_length=200),
        style: str = Input(
            description="How to render the text",
            choices=["plain", "shout", "whisper"],
            default="plain",
        ),
        repeat: int = Input(
            description="How many times to repeat it", choices=[1, 2, 3], default=1
        ),
        width: int = Input(description="Pad the result to this width", ge=0, le=80, default=0),
        temperature: float = Input(
            description="A knob that is only echoed", ge=0, le=2, default=0.7
        ),
        api_key: Secret = Input(
            description="Optional API key; only its presence is reported", default=None
        ),
        suffix: str | None = Input(description="Optional text appended at the end"),
        tags: list[str] = Input(description="Tags appended in brackets", default=[]),
    ) -> str:
        rendered = {"plain": text, "shout": text.upper(), "whisper": text.lower()}[style]
        parts = [rendered] * repeat
        if suffix is not None:
            parts.append(suffix)
        parts.extend(f"[{tag}]" for tag in tags)
        key = "with key" if api_key is not None and api_key.get_secret_value() else "no key"
        return f"{' '.join(parts):<{width}}|t={temperature}|{key}"
