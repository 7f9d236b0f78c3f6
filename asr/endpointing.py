"""When the caller starts and stops talking: a state machine over VAD probabilities.

I/O-free and clock-free: every call passes the frame, its speech probability and the
stream time at the frame's end, so a whole conversation can be replayed in a test in
microseconds and a DST night cannot change a decision. Events come back as values:

- ``SpeechStarted`` once ``min_speech_ms`` of speech accumulated (a click or a cough is
  shorter, and never interrupts the bot);
- ``SpeechEnded`` with the utterance's audio after ``end_silence_ms`` of trailing silence,
  or when the utterance reaches ``max_utterance_ms`` (``capped``). A capped utterance is cut
  in its latest pause of at least ``CAP_PAUSE_MS`` (in its second half), not at the frame
  the cap fell on: the words after the pause are not cut in two, and they stay as the start
  of the utterance that goes on, so nothing the caller said is dropped at the cut. Without
  such a pause (a noisy line) it is cut at the cap, as before;
- ``NoInput`` when ``listen()`` was called and nobody spoke for ``no_input_timeout_ms``;
- ``SpeechPaused`` after ``tentative_silence_ms`` of silence, with the audio so far, and
  ``SpeechResumed`` if the caller goes on: a pipeline may start transcribing at the pause
  and use the result if ``SpeechEnded`` follows, hiding ASR time inside the wait.

The silence that ends a turn adapts: an utterance still shorter than
``short_utterance_ms`` ("mon numéro c'est…") gets ``short_end_silence_ms`` instead, since a
caller who pauses that early is rarely done; unless ``complete()`` says the words so far
already make a whole question (the speculative transcript, understood with confidence):
then the ordinary ``end_silence_ms`` applies, never less.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import Enum

from asr.options import VadOptions
from bot.audio import AudioFrame

HYSTERESIS = 0.15  # Silero's convention: speech ends below threshold - 0.15, not at threshold
CAP_PAUSE_MS = 100  # the shortest silence a capped utterance is cut in: a breath between words


@dataclass(frozen=True)
class SpeechStarted:
    start_ms: int
    """Stream time at which the speech that started began (before ``min_speech_ms``)."""
    at_ms: int
    """Stream time at which it was confirmed: the earliest moment a barge-in can act."""


@dataclass(frozen=True)
class SpeechEnded:
    audio: AudioFrame
    """The utterance: ``pre_roll_ms`` before speech, the speech, and the trailing silence."""
    start_ms: int
    end_ms: int
    """Stream time of the last speech frame (the turn end was detected later, at ``at_ms``)."""
    at_ms: int
    capped: bool
    """True when cut at ``max_utterance_ms`` while the caller was still talking."""


@dataclass(frozen=True)
class SpeechPaused:
    audio: AudioFrame
    """The utterance so far, as ``SpeechEnded`` would carry it if the caller stopped here."""
    start_ms: int
    end_ms: int
    at_ms: int


@dataclass(frozen=True)
class SpeechResumed:
    at_ms: int
    """The caller spoke again after a ``SpeechPaused``: that utterance is not final."""


@dataclass(frozen=True)
class NoInput:
    at_ms: int
    count: int
    """Timeouts in a row since the caller last spoke: 1 → re-prompt, 2 → hand-off."""


EndpointEvent = SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded | NoInput


class _State(Enum):
    SILENCE = "silence"
    MAYBE_SPEECH = "maybe_speech"
    SPEECH = "speech"


class Endpointer:
    """One call's turn detector. Feed every 20 ms frame to ``push``; act on the events."""

    def __init__(self, options: VadOptions):
        self.options = options
        self._state = _State.SILENCE
        self._pre_roll: deque[AudioFrame] = deque()
        self._pre_roll_ms = 0
        self._utterance: list[AudioFrame] = []
        self._quiet: list[bool] = []  # per frame of the utterance: heard as silence
        self._start_ms = 0
        self._speech_ms = 0  # frames heard as speech in the current (candidate) utterance
        self._silence_ms = 0  # consecutive non-speech time
        self._last_speech_ms = 0
        self._paused = False  # a SpeechPaused was sent for the current silence
        self._complete = False  # the words up to this silence make a whole question
        self._listening_since: int | None = None
        self._no_input_count = 0

    @property
    def in_speech(self) -> bool:
        return self._state is _State.SPEECH

    def listen(self, now_ms: int) -> None:
        """Start the no-input timer (call when a prompt has finished playing)."""
        self._listening_since = now_ms

    def stop_listening(self) -> None:
        """Stop the no-input timer (call while the bot speaks)."""
        self._listening_since = None

    def end_silence_ms(self) -> int:
        """The trailing silence that would end the current utterance now."""
        o = self.options
        if o.short_utterance_ms and self._speech_ms < o.short_utterance_ms \
                and not self._complete:
            return max(o.end_silence_ms, o.short_end_silence_ms)
        return o.end_silence_ms

    def complete(self, now_ms: int) -> SpeechEnded | None:
        """The words before the current silence make a whole question: a short utterance
        ends after ``end_silence_ms`` like a long one, now if that much silence is already
        there. Withdrawn if the caller speaks again. Returns the end, if it is now."""
        if self._state is not _State.SPEECH or not self._paused:
            return None
        self._complete = True
        if self._silence_ms >= self.end_silence_ms():
            return self._end(now_ms, capped=False)
        return None

    def push(self, frame: AudioFrame, speech_prob: float, now_ms: int) -> list[EndpointEvent]:
        """Account for one frame that ended at stream time ``now_ms``."""
        o = self.options
        frame_ms = frame.duration_ms
        is_speech = speech_prob >= o.threshold
        is_silence = speech_prob < o.threshold - HYSTERESIS
        events: list[EndpointEvent] = []

        if self._state is _State.SILENCE:
            if is_speech:
                self._state = _State.MAYBE_SPEECH
                self._utterance = list(self._pre_roll)
                self._quiet = [True] * len(self._utterance)
                self._start_ms = now_ms - frame_ms
                self._speech_ms = 0
                self._silence_ms = 0
            else:
                self._remember(frame)
                if self._listening_since is not None \
                        and now_ms - self._listening_since >= o.no_input_timeout_ms:
                    self._no_input_count += 1
                    self._listening_since = None
                    events.append(NoInput(at_ms=now_ms, count=self._no_input_count))
                return events

        self._utterance.append(frame)
        self._quiet.append(is_silence)
        if is_speech:
            self._speech_ms += frame_ms
            self._silence_ms = 0
            self._last_speech_ms = now_ms
            if self._paused:
                self._paused = False
                self._complete = False
                events.append(SpeechResumed(at_ms=now_ms))
        elif is_silence:
            self._silence_ms += frame_ms

        if self._state is _State.MAYBE_SPEECH:
            if self._speech_ms >= o.min_speech_ms:
                self._state = _State.SPEECH
                self._listening_since = None
                self._no_input_count = 0
                events.append(SpeechStarted(start_ms=self._start_ms, at_ms=now_ms))
            elif self._silence_ms >= o.min_speech_ms:
                self._back_to_silence()  # a click, a cough: forget it
                return events

        if self._state is _State.SPEECH:
            duration_ms = now_ms - self._start_ms
            if self._silence_ms >= self.end_silence_ms():
                events.append(self._end(now_ms, capped=False))
            elif duration_ms >= o.max_utterance_ms:
                events.append(self._cap(now_ms))
            elif o.tentative_silence_ms and not self._paused \
                    and self._silence_ms >= o.tentative_silence_ms:
                self._paused = True
                events.append(SpeechPaused(audio=self._audio(), start_ms=self._start_ms,
                                           end_ms=self._last_speech_ms, at_ms=now_ms))
        return events

    def forget_utterance(self) -> None:
        """Drop what was heard of an utterance in progress (the caller spoke over something
        that could not be interrupted); the no-input timer is left as it is."""
        self._back_to_silence()

    def _audio(self) -> AudioFrame:
        rate = self._utterance[0].sample_rate
        return AudioFrame(b"".join(f.pcm for f in self._utterance), rate)

    def _end(self, now_ms: int, capped: bool) -> SpeechEnded:
        end_ms = now_ms if capped else self._last_speech_ms
        event = SpeechEnded(audio=self._audio(), start_ms=self._start_ms, end_ms=end_ms,
                            at_ms=now_ms, capped=capped)
        self._back_to_silence()
        return event

    def _cap(self, now_ms: int) -> SpeechEnded:
        """End a capped utterance in its latest pause; what follows the pause stays as the
        utterance in progress (still speech, its start moved to the cut)."""
        cut = self._latest_pause_middle()
        if cut is None:
            return self._end(now_ms, capped=True)
        head, tail = self._utterance[:cut], self._utterance[cut:]
        cut_ms = now_ms - sum(f.duration_ms for f in tail)  # stream time of the cut
        rate = head[0].sample_rate
        event = SpeechEnded(audio=AudioFrame(b"".join(f.pcm for f in head), rate),
                            start_ms=self._start_ms, end_ms=cut_ms, at_ms=now_ms, capped=True)
        self._utterance, self._quiet = tail, self._quiet[cut:]
        self._start_ms = cut_ms
        self._speech_ms = sum(f.duration_ms for f, quiet in zip(tail, self._quiet, strict=True)
                              if not quiet)
        self._paused = False
        self._complete = False
        return event

    def _latest_pause_middle(self) -> int | None:
        """Index of the frame in the middle of the latest run of at least ``CAP_PAUSE_MS``
        of silence in the utterance's second half, or None."""
        half = len(self._utterance) // 2
        run_end = None
        run_ms = 0
        for i in range(len(self._utterance) - 1, half - 1, -1):
            if self._quiet[i]:
                if run_end is None:
                    run_end, run_ms = i, 0
                run_ms += self._utterance[i].duration_ms
                continue
            if run_end is not None and run_ms >= CAP_PAUSE_MS:
                return (i + 1 + run_end + 1) // 2
            run_end = None
        if run_end is not None and run_ms >= CAP_PAUSE_MS:  # a pause across the half
            return (half + run_end + 1) // 2
        return None

    def _back_to_silence(self) -> None:
        self._state = _State.SILENCE
        self._utterance = []
        self._quiet = []
        self._pre_roll.clear()
        self._pre_roll_ms = 0
        self._speech_ms = 0
        self._silence_ms = 0
        self._paused = False
        self._complete = False

    def _remember(self, frame: AudioFrame) -> None:
        self._pre_roll.append(frame)
        self._pre_roll_ms += frame.duration_ms
        while self._pre_roll and self._pre_roll_ms - self._pre_roll[0].duration_ms \
                >= self.options.pre_roll_ms:
            self._pre_roll_ms -= self._pre_roll.popleft().duration_ms
