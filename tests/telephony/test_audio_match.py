"""The audio matcher the SIP tests rely on: it must tell heard from not heard, and nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from audio_match import match, padded

from bot.audio import AudioFrame, read_wav, resample

DATA = Path(__file__).resolve().parents[1] / "data" / "telephony"


@pytest.fixture(scope="module")
def question() -> AudioFrame:
    return resample(read_wav(DATA / "caller_question_16k.wav"), 8000)


def _samples(frame: AudioFrame) -> np.ndarray:
    return np.frombuffer(frame.pcm, "<i2").astype(np.int32)


def _frame(samples: np.ndarray, rate: int = 8000) -> AudioFrame:
    return AudioFrame(np.clip(samples, -32768, 32767).astype("<i2").tobytes(), rate)


def _mulaw_round_trip(frame: AudioFrame) -> AudioFrame:
    """G.711 µ-law there and back, the loss every telephone leg adds."""
    x = _samples(frame) / 32768.0
    coded = np.sign(x) * np.log1p(255 * np.abs(x)) / np.log1p(255)
    coded = np.round(coded * 127) / 127
    return _frame(np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(255)) / 255 * 32768)


def test_the_same_speech_after_a_codec_and_a_delay_matches(question):
    heard = _mulaw_round_trip(padded(question, 1.3, question.duration_ms / 1000 + 3))
    score, delay = match(question, heard)
    assert score > 0.9 and abs(delay - 1.3) < 0.01


def test_a_frame_dropped_and_one_repeated_by_a_jitter_buffer_still_match(question):
    samples = _samples(question)
    third = len(samples) // 3
    slipped = np.concatenate([samples[:third], samples[third + 160:2 * third],  # 20 ms lost
                              samples[2 * third - 320:]])  # 40 ms played twice
    score, _ = match(question, _mulaw_round_trip(padded(_frame(slipped), 0.5, 12)))
    assert score > 0.9


def test_other_speech_a_tone_or_half_the_question_do_not_match(question):
    samples = _samples(question)
    reversed_speech = _frame(samples[::-1].copy())  # same voice and spectrum, other waveform
    t = np.arange(len(samples)) / 8000
    tone = _frame(8000 * np.sin(2 * np.pi * 425 * t))  # the French ringback tone
    half = _frame(np.concatenate([samples[: len(samples) // 2], np.zeros(len(samples) // 2)]))
    assert match(question, reversed_speech)[0] < 0.4
    assert match(question, tone)[0] < 0.4
    assert match(question, half)[0] < 0.8
