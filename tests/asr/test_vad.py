"""Streaming Silero on 20 ms frames, state per call."""

from __future__ import annotations

import numpy as np
from asr_signals import concat, dtmf, french, silence, white_noise

from asr.vad import StreamingVad
from bot.audio import ASR_RATE, LINE_RATE, AudioFrame, StreamResampler, frame_bytes


def stream(vad: StreamingVad, audio: AudioFrame) -> list[float]:
    """Feed 8 kHz audio as the line delivers it: 20 ms frames, resampled at the entry."""
    resampler = StreamResampler(LINE_RATE, ASR_RATE)
    step = frame_bytes(LINE_RATE)
    return [vad.process(resampler.process(AudioFrame(audio.pcm[i : i + step], LINE_RATE)))
            for i in range(0, len(audio.pcm) - step + 1, step)]


def test_speech_frames_score_high_and_silence_low(silero):
    probs = stream(StreamingVad(silero), concat(silence(1), french("vm-tooshort"), silence(1)))
    assert max(probs[:50]) < 0.1  # the first second: silence
    assert max(probs[-25:]) < 0.2  # the last half second: silence again
    speech = probs[50:50 + 90]  # the 1.85 s prompt
    assert np.mean(np.array(speech) > 0.5) > 0.6


def test_noise_and_dtmf_are_not_speech(silero):
    for audio in (white_noise(5, -30), dtmf("0612345678#*")):
        assert max(stream(StreamingVad(silero), audio)) < 0.5


def test_each_call_keeps_its_own_state(silero):
    """Two calls interleaved frame by frame score exactly as each call alone."""
    a, b = french("vm-tooshort"), concat(silence(0.5), french("vm-isonphone"))
    alone_a, alone_b = stream(StreamingVad(silero), a), stream(StreamingVad(silero), b)
    vad_a, vad_b = StreamingVad(silero), StreamingVad(silero)
    res_a, res_b = StreamResampler(LINE_RATE, ASR_RATE), StreamResampler(LINE_RATE, ASR_RATE)
    step = frame_bytes(LINE_RATE)
    mixed_a, mixed_b = [], []
    for i in range(0, min(len(a.pcm), len(b.pcm)) - step + 1, step):
        mixed_a.append(vad_a.process(res_a.process(AudioFrame(a.pcm[i : i + step], LINE_RATE))))
        mixed_b.append(vad_b.process(res_b.process(AudioFrame(b.pcm[i : i + step], LINE_RATE))))
    assert mixed_a == alone_a[: len(mixed_a)]
    assert mixed_b == alone_b[: len(mixed_b)]


def test_whole_buffer_speech_time_matches_the_prompt(silero):
    from bot.audio import resample

    audio = resample(concat(silence(2), french("vm-tooshort"), silence(2)), ASR_RATE)
    assert 1000 <= silero.speech_ms(audio, 0.5) <= 1852
