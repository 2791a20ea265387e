"""Streams the words of a prompt back one token at a time."""

import time

from cog import BaseRunner, ConcatenateIterator, Input, streaming


class Predictor(BaseRunner):
    @streaming
    def run(
        self,
        prompt: str = Input(description="Text whose words are streamed back"),
        delay: float = Input(
            description="Seconds to wait before each token", default=0.05, ge=0, le=2
        ),
    ) -> ConcatenateIterator[str]:
        for index, word in enumerate(prompt.split()):
            time.sleep(delay)
            print(f"token {index}")
            yield word + " "
