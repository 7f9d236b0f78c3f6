"""ASR fixtures: the real Whisper base model and Silero VAD, loaded once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.assemble import assemble_whisper_base
from asr.options import AsrOptions
from bot.settings import PROJECT_ROOT


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The project's models directory, with Whisper base assembled (a no-op after set-up)."""
    models = PROJECT_ROOT / "models"
    assemble_whisper_base(models)
    return models


@pytest.fixture(scope="session")
def transcriber(models_dir: Path):
    from asr.transcriber import Transcriber

    return Transcriber.load(AsrOptions(), models_dir)


@pytest.fixture(scope="session")
def silero():
    from asr.vad import SileroModel

    return SileroModel.load()

