"""What a recording keeps of the bot: only what the line carried, where the caller heard it."""

from __future__ import annotations

import numpy as np

from bot.audio import AudioFrame
from telephony_adapter.recorder import CallRecorder


def samples(value: int, seconds: float, rate: int = 8000) -> bytes:
    return np.full(int(seconds * rate), value, dtype="<i2").tobytes()


def test_a_message_cut_by_barge_in_keeps_only_what_was_heard_at_its_place():
    recorder = CallRecorder(max_s=60)
    recorder.caller_audio(AudioFrame(samples(0, 1.0), 8000))  # one second before the answer
    recorder.message_started("answer")
    recorder.bot_audio("answer", samples(1000, 3.0))  # sent ahead of time, 3 s long
    recorder.caller_audio(AudioFrame(samples(500, 2.0), 8000))  # the caller speaks over it
    recorder.message_heard("answer", 700)  # the worker cut it after 700 ms
    recorder.message_started("lost")
    recorder.bot_audio("lost", samples(2000, 1.0))  # never reported: the worker vanished
    caller, bot = (np.frombuffer(c, "<i2") for c in recorder.channels())
    assert len(caller) == len(bot) == 24000
    assert not bot[:8000].any()
    assert (bot[8000:8000 + 5600] == 1000).all() and not bot[8000 + 5600:].any()
    assert (caller[8000:] == 500).all()


def test_a_wideband_caller_is_recorded_at_the_line_rate_and_the_length_is_capped():
    recorder = CallRecorder(max_s=2)
    for _ in range(3):
        recorder.caller_audio(AudioFrame(samples(100, 1.0, 16000), 16000))
    caller, bot = recorder.channels()
    assert len(caller) == len(bot) == 2 * 8000 * 2 and recorder.truncated
