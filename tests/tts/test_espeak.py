"""The embedded default voice: espeak-ng French, one frame per sentence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tts.options import TtsOptions
from tts.voice import TtsError, load_voice, synthesize_at


def loudness(pcm: bytes) -> float:
    return float(np.sqrt(np.mean(np.frombuffer(pcm, dtype="<i2").astype(np.float64) ** 2)))


def test_one_audible_frame_per_sentence_at_the_voice_rate(espeak):
    frames = list(espeak.synthesize("Bonjour. Vous êtes bien à la Caf. Au revoir."))
    assert len(frames) == 3
    assert {f.sample_rate for f in frames} == {22050}
    assert all(300 < f.duration_ms < 4000 and loudness(f.pcm) > 500 for f in frames)


def test_the_first_sentence_comes_before_the_rest_is_made(espeak):
    sentences = espeak.synthesize("Première phrase. " + "Une phrase de plus. " * 50)
    first = next(sentences)  # a generator: only the first sentence has been synthesised
    assert 500 < first.duration_ms < 2500


def test_synthesis_at_the_line_rate(espeak):
    frames = list(synthesize_at(espeak, "Bonjour.", 8000))
    assert frames[0].sample_rate == 8000
    assert abs(frames[0].duration_ms - next(espeak.synthesize("Bonjour.")).duration_ms) <= 1


def test_a_slower_rate_makes_longer_speech(espeak):
    slow = dataclasses.replace(espeak, rate=0.7)
    text = "Votre numéro allocataire figure sur vos courriers."
    normal_ms = next(espeak.synthesize(text)).duration_ms
    assert next(slow.synthesize(text)).duration_ms > normal_ms * 1.25


def test_the_voice_id_names_engine_version_and_voice(espeak):
    assert espeak.voice_id.startswith("espeak-ng-") and espeak.voice_id.endswith(":fr")


def test_a_text_starting_with_a_dash_is_spoken_not_taken_as_an_option(espeak):
    frames = list(espeak.synthesize("-v n'est pas une option."))
    assert len(frames) == 1 and loudness(frames[0].pcm) > 500


def test_an_unknown_espeak_voice_is_refused_in_french():
    with pytest.raises(TtsError, match="espeak-ng ne connaît pas la voix « zz-inconnue »"):
        load_voice(TtsOptions(voice="zz-inconnue"))


@pytest.mark.parametrize("options, message", [
    (TtsOptions(engine="festival"),
     "tts.engine « festival » inconnu ; valeurs possibles : espeak, piper."),
    (TtsOptions(rate=0), "tts.rate doit être positif (1.0 = débit naturel), pas 0."),
    (TtsOptions(engine="piper"),
     "tts.engine vaut « piper » mais tts.piper_model est vide : indiquez le chemin du fichier "
     ".onnx de la voix (VOICEBOT_TTS_PIPER_MODEL), voir docs/voices.md."),
])
def test_a_bad_configuration_says_what_to_fix(options, message):
    with pytest.raises(TtsError) as error:
        load_voice(options)
    assert str(error.value) == message
