"""One interface for every speech engine, and the one function that builds the configured one.

A ``Voice`` yields one ``AudioFrame`` per sentence at its own rate (espeak-ng 22 050 Hz,
Piper voices 16 000 or 22 050 Hz), lazily: the caller can play the first sentence while
the generator makes the next. ``synthesize_at`` brings each sentence to the line's rate,
through the project's one resampler (``bot.audio.resample``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

from bot.audio import AudioFrame, resample
from bot.errors import VoicebotError
from tts.options import TtsOptions

ENGINES = ("espeak", "piper")


class TtsError(VoicebotError):
    """The configured voice cannot be loaded or cannot speak."""


class Voice(Protocol):
    voice_id: str
    """Stable name of the engine, voice and engine version: part of every cache key, so a
    changed voice never replays audio made by the old one."""
    sample_rate: int
    """Rate of the frames ``synthesize`` yields."""
    rate: float
    """Speaking rate: 1.0 natural, 0.9 is 10 % slower (``TtsOptions.rate``)."""

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        """One frame per sentence, made on demand (blocking: call in a worker thread)."""
        ...


def load_voice(options: TtsOptions) -> Voice:
    """The voice ``options`` describe, or TtsError saying what to fix."""
    if options.rate <= 0:
        raise TtsError(f"tts.rate doit être positif (1.0 = débit naturel), pas {options.rate}.")
    if options.engine == "espeak":
        from tts.espeak import EspeakVoice

        return EspeakVoice.load(options.voice, options.rate)
    if options.engine == "piper":
        from tts.piper import PiperVoice

        if not options.piper_model:
            raise TtsError(
                "tts.engine vaut « piper » mais tts.piper_model est vide : indiquez le chemin "
                "du fichier .onnx de la voix (VOICEBOT_TTS_PIPER_MODEL), voir docs/voices.md."
            )
        return PiperVoice.load(Path(options.piper_model), options.rate)
    raise TtsError(
        f"tts.engine « {options.engine} » inconnu ; valeurs possibles : {', '.join(ENGINES)}."
    )


def synthesize_at(voice: Voice, text: str, sample_rate: int) -> Iterator[AudioFrame]:
    """``voice.synthesize(text)``, each sentence resampled to ``sample_rate``."""
    for frame in voice.synthesize(text):
        yield resample(frame, sample_rate)
