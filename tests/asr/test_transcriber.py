"""The real Whisper base model on recorded French telephone speech and on non-speech."""

from __future__ import annotations

import dataclasses
import re

import pytest
from asr_signals import (
    concat,
    dtmf,
    french,
    pink_noise,
    silence,
    ulaw_round_trip,
    white_noise,
)
from fake_whisper import FakeSegment, FakeWhisper

from asr.options import AsrOptions
from asr.transcriber import Transcriber
from bot.audio import ASR_RATE, resample


@pytest.mark.parametrize("name, text", [
    ("vm-tooshort", "votre message est trop court."),
    ("queue-youarenext", "votre appel sera le prochain à être traité."),
    ("vm-savefolder", "Dans quel dossier souhaitez-vous conserver ce message ?"),
])
def test_recorded_french_telephone_speech_is_transcribed_exactly(transcriber, name, text):
    standard = transcriber.with_options(dataclasses.replace(transcriber.options, window_pad_s=0))
    heard = standard.transcribe(ulaw_round_trip(french(name)))
    assert heard.text == text  # Whisper's own 30 s window: faster-whisper's exact output
    assert heard.rejected is None
    short = transcriber.transcribe(ulaw_round_trip(french(name)))  # the CPU default
    assert words_wrong(short.text, text) <= 1  # a homophone at most (souhaitais/souhaitez)


def words_wrong(heard: str, reference: str) -> int:
    """Words substituted, inserted or dropped (the numerator of the word error rate)."""
    import difflib

    matcher = difflib.SequenceMatcher(a=words(reference), b=words(heard), autojunk=False)
    same = sum(block.size for block in matcher.get_matching_blocks())
    return max(len(words(reference)), len(words(heard))) - same


def test_8khz_and_16khz_input_give_the_same_text(transcriber):
    line = french("conf-now-unmuted")
    assert transcriber.transcribe(line).text == "La conférence n'est plus en mode discret."
    assert transcriber.transcribe(resample(line, ASR_RATE)).text == \
        "La conférence n'est plus en mode discret."


def test_transcript_reports_audio_and_processing_time(transcriber):
    heard = transcriber.transcribe(french("vm-tooshort"))
    assert heard.audio_ms == 1852
    assert 0 < heard.asr_ms < 60_000
    assert 1000 < heard.speech_ms <= heard.audio_ms


def test_thirty_seconds_of_silence_yield_no_text(transcriber):
    heard = transcriber.transcribe(silence(30))
    assert heard.text == ""
    assert heard.no_speech


@pytest.mark.parametrize("noise", [
    pytest.param(lambda: white_noise(30, -60), id="line-hiss"),
    pytest.param(lambda: white_noise(30, -30), id="white-noise-telephone-level"),
    pytest.param(lambda: pink_noise(30, -30), id="pink-noise-telephone-level"),
    pytest.param(lambda: dtmf("0612345678#" * 11), id="dtmf-keys"),
])
def test_noise_and_dtmf_yield_no_text(transcriber, noise):
    heard = transcriber.transcribe(ulaw_round_trip(noise()))
    assert heard.text == ""


@pytest.mark.parametrize("noise", [
    pytest.param(lambda: white_noise(30, -30), id="white-noise"),
    pytest.param(lambda: dtmf("0612345678#" * 11), id="dtmf-keys"),
])
def test_whisper_own_thresholds_also_reject_noise_when_the_vad_cut_is_off(transcriber, noise):
    ungated = transcriber.with_options(dataclasses.replace(transcriber.options, vad_filter=False))
    assert ungated.transcribe(ulaw_round_trip(noise())).text == ""


def test_speech_surrounded_by_silence_and_tones_keeps_only_the_words(transcriber):
    audio = concat(silence(3), dtmf("123"), french("vm-tooshort"), white_noise(3, -45))
    assert words(transcriber.transcribe(audio).text) == ["votre", "message", "est", "trop",
                                                          "court"]


def test_the_domain_prompt_does_not_leak_into_the_transcript(transcriber):
    from asr.prompt import build_prompt

    prompt = build_prompt(["prime d'activité", "RSA", "Mon Compte", "FranceConnect"])
    assert transcriber.transcribe(silence(5), prompt=prompt).text == ""
    assert words(transcriber.transcribe(french("vm-tooshort"), prompt=prompt).text) == \
        ["votre", "message", "est", "trop", "court"]


def words(text: str) -> list[str]:
    """The words, whatever the capitals and punctuation ("Votre … court !")."""
    return re.findall(r"[\w'-]+", text.casefold())


def _with_fake(transcriber, *segments) -> Transcriber:
    """The fake stands for faster-whisper's ``WhisperModel.transcribe``: the 30 s window path."""
    return Transcriber(FakeWhisper(*segments), transcriber._vad, AsrOptions(window_pad_s=0))


def test_a_repetition_loop_is_dropped(transcriber):
    loop = FakeSegment("mou " * 60, compression_ratio=9.5)
    heard = _with_fake(transcriber, loop).transcribe(french("vm-tooshort"))
    assert (heard.text, heard.rejected) == ("", "repetition")


def test_more_words_than_a_person_can_say_are_dropped(transcriber):
    # 1.85 s of audio allows ceil(7 × 1.85) + 2 = 15 words
    many = FakeSegment(" ".join(f"mot{i}" for i in range(16)))
    heard = _with_fake(transcriber, many).transcribe(french("vm-tooshort"))
    assert (heard.text, heard.rejected) == ("", "too_many_words")
    fifteen = FakeSegment(" ".join(f"mot{i}" for i in range(15)))
    assert _with_fake(transcriber, fifteen).transcribe(french("vm-tooshort")).rejected is None


def test_subtitle_credits_are_recognised_as_hallucinations(transcriber):
    credits = FakeSegment(" Sous-titres réalisés par la communauté d'Amara.org")
    heard = _with_fake(transcriber, credits).transcribe(french("vm-tooshort"))
    assert (heard.text, heard.rejected) == ("", "hallucination")


def test_decoding_is_french_greedy_and_budgeted_by_audio_length(transcriber):
    fake = FakeWhisper(FakeSegment("votre message est trop court."))
    Transcriber(fake, transcriber._vad, AsrOptions(window_pad_s=0)).transcribe(
        french("vm-tooshort"))
    call = fake.calls[0]
    assert call["language"] == "fr"
    assert call["temperature"] == [0.0]
    assert call["condition_on_previous_text"] is False
    assert call["max_new_tokens"] == 31  # ceil(12 tokens/s × 1.852 s) + 8


def test_empty_or_tiny_audio_is_silence_not_an_error(transcriber):
    from bot.audio import AudioFrame

    for audio in (AudioFrame(b"", 8000), AudioFrame(bytes(100), 16000)):
        heard = transcriber.transcribe(audio)
        assert (heard.text, heard.rejected) == ("", "silence")
