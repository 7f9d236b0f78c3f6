"""A Whisper stand-in that returns chosen segments: repetition loops and subtitle credits
cannot be produced on demand from the real model, and the checks that drop them must be
shown to work. Everything else in the tests uses the real model."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeSegment:
    text: str
    compression_ratio: float = 1.2
    avg_logprob: float = -0.3
    no_speech_prob: float = 0.01


class FakeWhisper:
    def __init__(self, *segments: FakeSegment):
        self.segments = segments
        self.calls: list[dict] = []

    def transcribe(self, audio, **kwargs):
        self.calls.append(kwargs)
        return iter(self.segments), None
