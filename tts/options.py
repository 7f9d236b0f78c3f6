"""Options of speech synthesis."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TtsOptions:
    engine: str = "espeak"
    """``espeak`` (espeak-ng French, the embedded default) or ``piper`` (needs ``piper_model``)."""
    voice: str = "fr"
    """espeak-ng voice name; ignored by Piper, whose voice is the model."""
    piper_model: str = ""
    """Path to a Piper ``.onnx`` voice; its ``.onnx.json`` config must sit beside it."""
    rate: float = 1.0
    """Speaking rate: 1.0 is the voice's natural speed, 0.9 is 10 % slower."""
