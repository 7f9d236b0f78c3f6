"""A Piper voice (``.onnx`` + ``.onnx.json``), the engine for a configured, natural voice.

Piper already yields one chunk per sentence and makes them lazily; this adapts its chunk
to ``AudioFrame`` and its ``length_scale`` to our ``rate``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from bot.audio import AudioFrame
from tts.voice import TtsError


class PiperVoice:
    def __init__(self, voice, voice_id: str, rate: float):
        self._voice = voice
        self.voice_id = voice_id
        self.rate = rate
        self.sample_rate: int = voice.config.sample_rate

    @classmethod
    def load(cls, model: Path, rate: float = 1.0, config: Path | None = None) -> PiperVoice:
        from piper import PiperVoice as _Piper

        config = config or model.with_name(model.name + ".json")
        for path, what in ((model, "modèle .onnx"), (config, "configuration .onnx.json")):
            if not path.is_file():
                raise TtsError(
                    f"Voix Piper : {what} introuvable ({path}). Copiez le .onnx et son "
                    ".onnx.json dans le même dossier, voir docs/voices.md."
                )
        try:
            voice = _Piper.load(model, config_path=config)
        except Exception as exc:  # noqa: BLE001 - onnxruntime and json raise many kinds
            raise TtsError(f"Voix Piper illisible ({model}) : {type(exc).__name__}: {exc}") from exc
        return cls(voice, f"piper:{model.stem}:{_fingerprint(model, config)}", rate)

    def synthesize(self, text: str) -> Iterator[AudioFrame]:
        from piper import SynthesisConfig

        config = SynthesisConfig(length_scale=1.0 / self.rate)
        for chunk in self._voice.synthesize(text, syn_config=config):
            yield AudioFrame(chunk.audio_int16_bytes, chunk.sample_rate)


def _fingerprint(model: Path, config: Path) -> str:
    """Changes when the voice's files change (a new .onnx under the same name)."""
    digest = hashlib.sha256(config.read_bytes())
    stat = model.stat()
    digest.update(f"{stat.st_size}".encode())
    with model.open("rb") as f:
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:12]
