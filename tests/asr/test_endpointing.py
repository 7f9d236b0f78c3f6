"""The end-of-turn state machine, driven by probabilities and times (no clock, no I/O)."""

from __future__ import annotations

import dataclasses

from asr_signals import concat, french, silence, white_noise

from asr.endpointing import (
    Endpointer,
    NoInput,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from asr.options import VadOptions
from asr.vad import StreamingVad
from bot.audio import ASR_RATE, LINE_RATE, AudioFrame, StreamResampler, frame_bytes

FRAME = AudioFrame(bytes(320), LINE_RATE)  # 20 ms; its content does not matter here
FLAT = VadOptions(end_silence_ms=700, short_utterance_ms=0, tentative_silence_ms=0)


class Run:
    """Feeds probabilities 20 ms apart and keeps the events with their times."""

    def __init__(self, options: VadOptions):
        self.endpointer = Endpointer(options)
        self.now_ms = 0
        self.events: list = []

    def feed(self, prob: float, ms: int) -> Run:
        for _ in range(ms // 20):
            self.now_ms += 20
            self.events += self.endpointer.push(FRAME, prob, self.now_ms)
        return self

    def kinds(self) -> list[str]:
        return [type(e).__name__ for e in self.events]


def test_a_click_shorter_than_min_speech_starts_nothing():
    run = Run(FLAT).feed(0.0, 200).feed(0.9, 100).feed(0.0, 2000)
    assert run.events == []


def test_speech_starts_after_min_speech_and_ends_after_the_trailing_silence():
    run = Run(FLAT).feed(0.0, 400).feed(0.9, 1000).feed(0.0, 1000)
    started, ended = run.events
    assert started == SpeechStarted(start_ms=400, at_ms=600)
    assert isinstance(ended, SpeechEnded)
    assert (ended.start_ms, ended.end_ms, ended.at_ms, ended.capped) == (400, 1400, 2100, False)
    # 200 ms of pre-roll + 1000 ms of speech + 700 ms of trailing silence
    assert ended.audio.duration_ms == 1900


def test_a_pause_shorter_than_the_end_silence_keeps_the_turn():
    run = Run(FLAT).feed(0.9, 1000).feed(0.0, 680).feed(0.9, 1000).feed(0.0, 700)
    assert run.kinds() == ["SpeechStarted", "SpeechEnded"]
    assert run.events[1].end_ms == 2680


def test_in_between_probabilities_neither_end_nor_extend_speech():
    # 0.4 is below the threshold (0.5) but above threshold - 0.15: not silence either
    run = Run(FLAT).feed(0.9, 1000).feed(0.4, 2000)
    assert run.kinds() == ["SpeechStarted"]


def test_a_short_utterance_gets_the_longer_wait():
    options = dataclasses.replace(FLAT, short_utterance_ms=2500, short_end_silence_ms=1200)
    short = Run(options).feed(0.9, 1500).feed(0.0, 1000)
    assert short.kinds() == ["SpeechStarted"]  # 1 s of silence after 1.5 s: not done yet
    short.feed(0.0, 200)
    assert short.kinds() == ["SpeechStarted", "SpeechEnded"]
    long = Run(options).feed(0.9, 3000).feed(0.0, 700)
    assert long.kinds() == ["SpeechStarted", "SpeechEnded"]


def test_an_endless_utterance_is_capped():
    options = dataclasses.replace(FLAT, max_utterance_ms=5000)
    run = Run(options).feed(0.9, 6000)
    ended = run.events[1]
    assert isinstance(ended, SpeechEnded) and ended.capped
    assert ended.at_ms - ended.start_ms == 5000


def test_no_input_fires_once_per_listen_and_counts_until_the_caller_speaks():
    options = dataclasses.replace(FLAT, no_input_timeout_ms=3000)
    run = Run(options)
    run.endpointer.listen(0)
    run.feed(0.0, 5000)
    assert run.events == [NoInput(at_ms=3000, count=1)]
    run.endpointer.listen(run.now_ms)
    run.feed(0.0, 3000)
    assert run.events[-1] == NoInput(at_ms=8000, count=2)
    run.endpointer.listen(run.now_ms)
    run.feed(0.9, 500).feed(0.0, 800)
    run.endpointer.listen(run.now_ms)
    run.feed(0.0, 3000)
    assert run.events[-1] == NoInput(at_ms=12300, count=1)


def test_no_input_is_not_armed_while_the_bot_speaks():
    options = dataclasses.replace(FLAT, no_input_timeout_ms=3000)
    run = Run(options)
    run.endpointer.listen(0)
    run.endpointer.stop_listening()
    run.feed(0.0, 10_000)
    assert run.events == []


def test_a_pause_is_offered_early_and_withdrawn_when_the_caller_goes_on():
    options = dataclasses.replace(FLAT, tentative_silence_ms=300)
    run = Run(options).feed(0.9, 1000).feed(0.0, 400).feed(0.9, 600).feed(0.0, 800)
    assert run.kinds() == ["SpeechStarted", "SpeechPaused", "SpeechResumed", "SpeechPaused",
                           "SpeechEnded"]
    paused, resumed = run.events[1], run.events[2]
    assert isinstance(paused, SpeechPaused) and isinstance(resumed, SpeechResumed)
    assert (paused.end_ms, paused.at_ms, resumed.at_ms) == (1000, 1300, 1420)


def test_a_recorded_caller_pausing_mid_sentence_is_not_cut_off(silero):
    """Real speech: a prompt cut in two by 600 ms of line noise stays one utterance."""
    prompt = french("followme_status")  # 5.5 s, "La personne que vous désirez joindre…"
    half = len(prompt.pcm) // 2 // 320 * 320
    audio = concat(silence(0.5), AudioFrame(prompt.pcm[:half], LINE_RATE),
                   white_noise(0.6, -60), AudioFrame(prompt.pcm[half:], LINE_RATE),
                   silence(2.5))
    vad, resampler = StreamingVad(silero), StreamResampler(LINE_RATE, ASR_RATE)
    endpointer = Endpointer(VadOptions())
    events = []
    step = frame_bytes(LINE_RATE)
    for n, i in enumerate(range(0, len(audio.pcm) - step + 1, step), start=1):
        frame = AudioFrame(audio.pcm[i : i + step], LINE_RATE)
        events += endpointer.push(frame, vad.process(resampler.process(frame)), n * 20)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert len(ended) == 1
    assert ended[0].audio.duration_ms >= prompt.duration_ms


ADAPTIVE = VadOptions(end_silence_ms=600, short_utterance_ms=2500, short_end_silence_ms=1200,
                      tentative_silence_ms=300)


def test_a_short_utterance_judged_whole_ends_after_the_ordinary_silence():
    plain = Run(ADAPTIVE).feed(0.9, 1500).feed(0.0, 1500)
    assert plain.events[-1].at_ms == 1500 + 1200  # short: the longer silence
    judged = Run(ADAPTIVE).feed(0.9, 1500).feed(0.0, 400)  # paused at 300 ms
    assert judged.kinds() == ["SpeechStarted", "SpeechPaused"]
    assert judged.endpointer.complete(judged.now_ms) is None  # 400 ms: not 600 yet
    judged.feed(0.0, 200)
    assert judged.kinds()[-1] == "SpeechEnded" and judged.events[-1].at_ms == 1500 + 600


def test_a_whole_question_judged_late_ends_the_turn_at_once():
    run = Run(ADAPTIVE).feed(0.9, 1500).feed(0.0, 700)
    ended = run.endpointer.complete(run.now_ms)  # the transcript came after 600 ms
    assert isinstance(ended, SpeechEnded) and ended.at_ms == 2200 and ended.end_ms == 1500


def test_speaking_again_withdraws_the_judgement():
    run = Run(ADAPTIVE).feed(0.9, 1500).feed(0.0, 400)
    assert run.endpointer.complete(run.now_ms) is None
    run.feed(0.9, 300).feed(0.0, 900)  # "… et ma prime d'activité": a new pause, unjudged
    assert run.kinds() == ["SpeechStarted", "SpeechPaused", "SpeechResumed", "SpeechPaused"]
    run.feed(0.0, 300)
    assert run.events[-1].at_ms == 1500 + 400 + 300 + 1200
    assert run.endpointer.complete(10_000) is None  # no utterance: nothing to end


# --- the cap at max_utterance_ms keeps every word --------------------------------------------


class NumberedRun(Run):
    """Like Run, but each frame's audio is its own number, to check what audio went where."""

    def feed(self, prob: float, ms: int) -> NumberedRun:
        for _ in range(ms // 20):
            self.now_ms += 20
            frame = AudioFrame(self.now_ms.to_bytes(4, "little") * 80, LINE_RATE)
            self.events += self.endpointer.push(frame, prob, self.now_ms)
        return self


def frame_times(audio: AudioFrame) -> list[int]:
    return [int.from_bytes(audio.pcm[i : i + 4], "little") for i in range(0, len(audio.pcm), 320)]


def test_a_capped_utterance_is_cut_in_its_latest_pause_and_the_rest_goes_on():
    options = dataclasses.replace(FLAT, max_utterance_ms=5000)
    run = NumberedRun(options).feed(0.0, 400).feed(0.9, 2000).feed(0.0, 200).feed(0.9, 1000)
    run.feed(0.0, 200).feed(0.9, 2000)  # pauses at 2400-2600 and 3600-3800 ms; cap at 5400
    capped = [e for e in run.events if isinstance(e, SpeechEnded)]
    assert len(capped) == 1 and capped[0].capped
    assert (capped[0].start_ms, capped[0].end_ms, capped[0].at_ms) == (400, 3700, 5400)
    assert frame_times(capped[0].audio)[-1] == 3700  # the middle of the latest pause
    run.feed(0.0, 700)
    rest = run.events[-1]
    assert isinstance(rest, SpeechEnded) and not rest.capped
    assert rest.start_ms == 3700 and rest.end_ms == 5800
    # nothing lost, nothing twice: pre-roll, the capped part, then the rest up to its end
    assert frame_times(capped[0].audio) + frame_times(rest.audio) == list(range(220, 6520, 20))


def test_a_capped_utterance_without_any_pause_is_cut_at_the_cap():
    options = dataclasses.replace(FLAT, max_utterance_ms=5000)
    run = NumberedRun(options).feed(0.9, 6000)
    ended = run.events[1]
    assert ended.capped and (ended.start_ms, ended.end_ms, ended.at_ms) == (0, 5000, 5000)
    assert frame_times(ended.audio)[-1] == 5000


def test_a_recorded_caller_talking_past_the_cap_is_cut_between_two_sentences(silero):
    """Real speech: three prompts with 300 ms breaths, capped at 8 s: the cut falls in a
    breath, and the two utterances together hold all the audio from the first word."""
    prompts = [french("followme_status"), french("queue-youarenext"), french("vm-tooshort")]
    gaps_ms, parts, at_ms = [], [silence(0.5)], 500
    for prompt in prompts:
        parts += [prompt, silence(0.3)]
        at_ms += prompt.duration_ms
        gaps_ms.append((at_ms, at_ms + 300))
        at_ms += 300
    parts.append(silence(2.0))
    audio = concat(*parts)
    vad, resampler = StreamingVad(silero), StreamResampler(LINE_RATE, ASR_RATE)
    endpointer = Endpointer(VadOptions(max_utterance_ms=8000, end_silence_ms=1500,
                                       short_utterance_ms=0, tentative_silence_ms=0))
    events = []
    step = frame_bytes(LINE_RATE)
    for n, i in enumerate(range(0, len(audio.pcm) - step + 1, step), start=1):
        frame = AudioFrame(audio.pcm[i : i + step], LINE_RATE)
        events += endpointer.push(frame, vad.process(resampler.process(frame)), n * 20)
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    assert [e.capped for e in ended] == [True, False]
    assert any(start <= ended[0].end_ms <= end for start, end in gaps_ms[:-1]), \
        (ended[0].end_ms, gaps_ms)
    joined = ended[0].audio.pcm + ended[1].audio.pcm  # contiguous up to the turn's end
    end_byte = ended[1].at_ms * LINE_RATE // 1000 * 2
    assert joined == audio.pcm[end_byte - len(joined) : end_byte]
    assert (end_byte - len(joined)) // 2 * 1000 // LINE_RATE <= ended[0].start_ms
