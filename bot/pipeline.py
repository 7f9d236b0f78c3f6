"""One phone conversation: caller audio → VAD → ASR → dialogue → TTS → line, in one place.

```
line.audio_in ─▶ resample 16 kHz ─▶ Silero VAD ─▶ Endpointer ──┐ SpeechEnded
line.dtmf ──────────────────────────────────────────────────────┤ digit
line.ended ─────────────────────────────────────────────────────┤ hang-up
                                                               ▼
                                       Conversation (one event loop, one event at a time)
                                            │ Transcriber (thread) → Dialogue → Speaker
                                            ▼
                                     line.playout ─▶ what the caller hears, counted in ms
```

Every source is a small task that posts events on one queue; ``Conversation`` handles them
in order, so its state (speaking, thinking, barge-in) has a single writer and needs no lock.
The slow stages run as tasks that post their result back: while the bot thinks or speaks,
the caller's audio is still read, so a barge-in is seen the moment it happens.

Barge-in: speech while the bot talks only stops it after ``vad.barge_in_ms`` of confident
speech; shorter sounds ("oui", "hm", a cough, line echo) are ignored, and so is anything
said over the opening notice. What the caller heard of each message comes from the
playout's sample count (``bot.playout``), the numbers SC3.2 billing is computed from.

Any failure in a turn (ASR, model, synthesis, broken audio) becomes the apology message
and a hand-off: a caller never gets dead air.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from asr.endpointing import (
    Endpointer,
    NoInput,
    SpeechEnded,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
)
from asr.prompt import build_prompt, terms_from_texts
from asr.scheduler import AsrScheduler, SpeculationDropped
from asr.transcriber import Transcriber, Transcript
from asr.vad import SileroModel, StreamingVad
from bot.audio import ASR_RATE, AudioFrame, StreamResampler
from bot.dialogue import Dialogue, Reply
from bot.kb.model import KnowledgeBase
from bot.playout import PlaybackFinished, Playout
from bot.settings import Settings
from tts.speaker import Speaker

log = logging.getLogger(__name__)

Transfer = Callable[[], Awaitable[bool]]
"""Hands the caller to an advisor; True once the call has left the bot."""


class Line(Protocol):
    """What a conversation needs from a phone line (``CallLeg``, the sound card, a test)."""

    sample_rate: int
    audio_in: asyncio.Queue[AudioFrame]
    dtmf: asyncio.Queue[str]
    playout: Playout
    ended: asyncio.Event


SATISFACTION_KEYS = frozenset("12345")
"""The keys of the satisfaction question ("tapez de 1 à 5")."""

REPLY_TARGET_S = 1.5
"""A turn's ASR deadline is the end of the caller's speech plus this: with every turn given
the same offset, the node's queue serves turns in the order their callers stopped talking
(earliest deadline first), and a turn transcribed later than this counts as ``late``."""


@dataclass(frozen=True)
class VoiceServices:
    """The loaded models, shared by every conversation of the process."""

    settings: Settings
    transcriber: Transcriber
    vad_model: SileroModel
    dialogue: Dialogue
    speaker: Speaker
    _schedulers: dict[asyncio.AbstractEventLoop, AsrScheduler] = field(
        default_factory=dict, init=False, repr=False, compare=False)
    """Not copied by ``dataclasses.replace``: other models, other queue."""

    @classmethod
    async def load(cls, settings: Settings) -> VoiceServices:
        transcriber = await asyncio.to_thread(Transcriber.load, settings.asr,
                                              settings.paths.models_dir)
        vad_model = await asyncio.to_thread(SileroModel.load)
        dialogue = await Dialogue.load(settings)
        speaker = await asyncio.to_thread(Speaker.load, settings)
        return cls(settings, transcriber, vad_model, dialogue, speaker)

    def asr_prompt(self) -> str:
        """The domain sentence Whisper is primed with, from the live knowledge base (built
        once per published base)."""
        return self.dialogue.snapshot.kb.derived("asr_prompt", _asr_prompt)

    def scheduler(self) -> AsrScheduler:
        """The node's ASR queue (one per event loop: the engine has one; tests run several)."""
        loop = asyncio.get_running_loop()
        if loop not in self._schedulers:
            for old in [known for known in self._schedulers if known.is_closed()]:
                del self._schedulers[old]
            self._schedulers[loop] = AsrScheduler(self.transcriber, self.settings.asr)
        return self._schedulers[loop]

    async def transcribe(self, audio: AudioFrame, *, deadline: float | None = None,
                         speculative: bool = False, label: str = "") -> Transcript:
        """Transcribe through the node's queue; ``deadline`` (``time.monotonic()``) orders
        the turns, earliest first. A speculative job may raise ``SpeculationDropped``."""
        if deadline is None:
            deadline = time.monotonic() + REPLY_TARGET_S
        return await self.scheduler().transcribe(audio, self.asr_prompt(), deadline=deadline,
                                                 speculative=speculative, label=label)


def _asr_prompt(kb: KnowledgeBase) -> str:
    texts = [e.answer or "" for e in kb.entries] + [q for e in kb.entries for q in e.questions]
    return build_prompt(terms_from_texts(tuple(texts)))


class Ending(str, Enum):
    GOODBYE = "goodbye"
    """The bot said goodbye and the call can be hung up."""
    HANDOFF = "handoff"
    """The caller was handed to an advisor."""
    HUNG_UP = "hung_up"
    """The caller hung up first."""


@dataclass(frozen=True)
class SpokenMessage:
    """One message of the bot as it went out on the line."""

    key: str
    """``reply`` for an answer to the caller, else the message key (``greeting``…)."""
    text: str
    action: str | None
    motif: str | None
    message_ms: int
    listened_ms: int
    interrupted: bool


@dataclass(frozen=True)
class Turn:
    """One caller utterance (or key press) and what it cost."""

    transcript: str
    reply: Reply | None
    asr_ms: int = 0
    nlu_ms: int = 0
    tts_ms: int = 0
    """From the reply to its first audio being ready."""
    response_ms: int = 0
    """From the end of the caller's speech to the first audio of the reply being ready:
    the end-of-turn wait, then ASR, dialogue and TTS."""
    wait_ms: int = 0
    """From the end of the caller's speech to the end of the turn being decided (the
    trailing silence the endpointer waited for)."""


@dataclass
class ConversationResult:
    ending: Ending = Ending.HUNG_UP
    messages: list[SpokenMessage] = field(default_factory=list)
    turns: list[Turn] = field(default_factory=list)
    error: str | None = None
    """Set when a failure sent the caller to an advisor with the apology."""
    satisfaction_asked: bool = False
    """The satisfaction question was put to the caller (before a normal goodbye)."""
    satisfaction: int | None = None
    """The caller's key, 1 (not at all satisfied) to 5 (very); None: no answer."""

    @property
    def motif(self) -> str | None:
        """The motif of the last real question (dialogue moves do not change it)."""
        for turn in reversed(self.turns):
            reply = turn.reply
            if reply and reply.motif and reply.action != "dialogue":
                return reply.motif
        for turn in reversed(self.turns):
            if turn.reply and turn.reply.motif:
                return turn.reply.motif
        return None

    @property
    def billed_message(self) -> SpokenMessage | None:
        """The bot's last answer: the message SC3.2 billing measures (docs/ledger.md). Its
        follow-up ("Avez-vous une autre question ?") is a message of its own, ``follow_up``,
        and not part of it."""
        for message in reversed(self.messages):
            if message.key == "reply" and message.action in ("answer", "reorient"):
                return message
        return None

    @property
    def question(self) -> str:
        """What the caller last asked, in their words: the transcript of the last turn that
        carried a real question (keys and "oui", "merci" left out), else of any spoken turn."""
        spoken = [t for t in self.turns if t.transcript and not t.transcript.startswith("[")]
        for turn in reversed(spoken):
            if turn.reply is not None and turn.reply.action != "dialogue":
                return turn.transcript
        return spoken[-1].transcript if spoken else ""

    @property
    def transcript(self) -> str:
        lines = []
        for turn in self.turns:
            lines.append(f"Appelant : {turn.transcript}")
            if turn.reply:
                lines.append(f"Bot : {turn.reply.text}")
        return "\n".join(lines)


# --- events on the conversation's queue ------------------------------------------------
@dataclass(frozen=True)
class _Heard:
    event: SpeechStarted | SpeechPaused | SpeechResumed | SpeechEnded | NoInput


@dataclass(frozen=True)
class _Loud:
    """A frame of confident speech while the bot talks (counts toward barge-in)."""

    frame_ms: int


@dataclass(frozen=True)
class _Key:
    digit: str


@dataclass(frozen=True)
class _Played:
    playback: _Playback
    finished: PlaybackFinished
    follow_up: PlaybackFinished | None = None
    """How the playback's follow-up question went out, when it had one."""

    @property
    def interrupted(self) -> bool:
        return self.finished.interrupted or bool(self.follow_up and self.follow_up.interrupted)


@dataclass(frozen=True)
class _Judged:
    """The speculative transcript of ``audio`` (the words up to a pause) is a whole
    question: a short utterance need not wait for the longer end-of-turn silence."""

    audio: AudioFrame


@dataclass(frozen=True)
class _Answered:
    turn: Turn


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _HungUp:
    pass


@dataclass
class _Playback:
    id: str
    """Unique in the call: the playout's message id."""
    key: str
    texts: tuple[str, ...]
    interruptible: bool
    reply: Reply | None = None
    then: str | None = None
    """What follows when it has played: ``listen``, ``goodbye``, ``handoff``, ``survey``."""
    follow_up: tuple[str, ...] = ()
    """Played right after ``texts`` as a message of its own (``follow_up``), not billed."""


class Conversation:
    """Runs one call on ``line`` until goodbye, hand-off or hang-up."""

    def __init__(self, services: VoiceServices, line: Line, conversation_id: str,
                 transfer: Transfer, on_turn: Callable[[Turn], None] | None = None):
        self.services = services
        self.line = line
        self.id = conversation_id
        self.transfer = transfer
        self.on_turn = on_turn
        options = services.settings.vad
        self._vad_options = options
        self._endpointer = Endpointer(options)
        self._events: asyncio.Queue[object] = asyncio.Queue()
        self._result = ConversationResult()
        self._now_ms = 0
        self._speaking: _Playback | None = None
        self._barge_ms = 0
        self._barged = False
        self._thinking = False
        self._speculative: tuple[AudioFrame, asyncio.Task[Transcript]] | None = None
        self._played = 0
        self._hung_up = False
        self._done = False
        self._tasks: set[asyncio.Task[None]] = set()
        """Turns and playbacks in flight: kept (a task nobody holds may be collected) and
        cancelled when the conversation ends, so none outlives its call."""
        self._goodbye: Reply | None = None
        """The goodbye waiting for the caller's satisfaction key, while the survey runs."""
        self._held: list[SpeechEnded] = []
        """Pieces of an utterance cut at ``max_utterance_ms`` while the caller went on: the
        turn is their words whole, once the caller stops (``_take_turn``)."""

    @property
    def progress(self) -> ConversationResult:
        """The conversation so far (read-only for others): the call flow reads the motif and
        the caller's question from it when it hands the caller to an advisor."""
        return self._result

    # --- entry point ------------------------------------------------------------------
    async def run(self, opening: Sequence[str] = ()) -> ConversationResult:
        """Say ``opening`` (a crisis notice), the greeting, then converse."""
        sources = [asyncio.create_task(coro) for coro in
                   (self._read_audio(), self._read_keys(), self._watch_hangup())]
        try:
            messages = self.services.dialogue.snapshot.kb.messages
            self._say("greeting", (*opening, messages["greeting"]), interruptible=False,
                      then="listen")
            while not self._done:
                await self._handle(await self._events.get())
        finally:
            for task in (*sources, *self._tasks):
                task.cancel()
            if self._speculative:
                self._speculative[1].cancel()
            await asyncio.gather(*sources, *self._tasks, return_exceptions=True)
            await self.services.dialogue.forget(self.id)
        return self._result

    # --- sources ----------------------------------------------------------------------
    async def _read_audio(self) -> None:
        """The caller's audio through the VAD and the endpointer, while it can matter.

        Over the greeting or another message that cannot be interrupted, and while a turn
        is being answered, what the caller says changes nothing: the audio only advances
        the clock, and the VAD starts afresh when the caller can be heard again. On a node
        with many calls that is a third of the audio work saved. A chunk may hold several
        20 ms frames (the line's sender merges them under load): its VAD windows go through
        the network in one run.
        """
        vad = StreamingVad(self.services.vad_model)
        resampler: StreamResampler | None = None
        strong = self._vad_options.barge_in_threshold
        deaf = False
        while True:
            chunk = await self.line.audio_in.get()
            if not self._hearing():
                self._now_ms += chunk.duration_ms
                if not deaf:
                    deaf = True
                    self._endpointer.forget_utterance()
                continue
            if deaf:
                deaf = False
                vad.reset()
                resampler = None
            if chunk.sample_rate != ASR_RATE:
                if resampler is None:
                    resampler = StreamResampler(chunk.sample_rate, ASR_RATE)
                chunk = resampler.process(chunk)
            for frame, probability in vad.frames(chunk):
                self._now_ms += frame.duration_ms
                if probability >= strong and self._speaking and self._speaking.interruptible:
                    self._events.put_nowait(_Loud(frame.duration_ms))
                for event in self._endpointer.push(frame, probability, self._now_ms):
                    self._events.put_nowait(_Heard(event))

    def _hearing(self) -> bool:
        """Whether what the caller says now can change anything."""
        if self._thinking:
            return False
        return self._speaking is None or self._speaking.interruptible

    async def _read_keys(self) -> None:
        while True:
            self._events.put_nowait(_Key(await self.line.dtmf.get()))

    async def _watch_hangup(self) -> None:
        await self.line.ended.wait()
        self._events.put_nowait(_HungUp())

    # --- the one place where state changes ------------------------------------------------
    async def _handle(self, event: object) -> None:
        if isinstance(event, _HungUp):
            self._hung_up = True
            self.line.playout.close()  # the message in progress resolves with what was heard
            if self._speaking is None:
                self._finish(Ending.HUNG_UP)
        elif isinstance(event, _Played):
            await self._on_played(event)
        elif isinstance(event, _Loud):
            self._barge_ms += event.frame_ms
            if not self._barged and self._barge_ms >= self._vad_options.barge_in_ms:
                self._barged = True
                log.debug("%s: barge-in", self.id)
                self.line.playout.interrupt()
        elif isinstance(event, _Heard):
            self._on_heard(event.event)
        elif isinstance(event, _Key):
            self._on_key(event.digit)
        elif isinstance(event, _Judged):
            self._on_judged(event.audio)
        elif isinstance(event, _Answered):
            self._on_answered(event.turn)
        elif isinstance(event, _Failed):
            await self._fail(event.error)

    def _on_heard(self, event: object) -> None:
        if isinstance(event, SpeechStarted):
            pass
        elif isinstance(event, SpeechPaused):
            if self._may_take_turn():
                self._speculate(event.audio)
        elif isinstance(event, SpeechResumed):
            self._drop_speculation()
        elif isinstance(event, SpeechEnded):
            self._barge_ms = 0
            if self._goodbye is not None and not self._speaking:
                self._end_survey(None)  # words, not a key: no score, and goodbye
            elif self._may_take_turn():
                if event.capped and self._held_ms() + _duration_ms(event) < self._hold_max_ms():
                    self._held.append(event)  # the caller goes on: keep listening
                    self._drop_speculation()
                else:
                    self._take_turn(event)
            else:
                log.debug("%s: %d ms of speech over the bot ignored", self.id,
                          event.end_ms - event.start_ms)
                self._drop_speculation()
        elif isinstance(event, NoInput) and not self._thinking and not self._speaking:
            messages = self.services.dialogue.snapshot.kb.messages
            if self._goodbye is not None:
                self._end_survey(None)
            elif event.count >= 2:
                self._say("no_input_handoff", (messages["no_input_handoff"],),
                          interruptible=False, then="handoff")
            else:
                self._say("no_input", (messages["no_input"],), interruptible=True, then="listen")

    def _on_judged(self, audio: AudioFrame) -> None:
        if not self._speculative or self._speculative[0] is not audio \
                or not self._may_take_turn():
            return  # the caller spoke again, or the bot is busy: the judgement is stale
        ended = self._endpointer.complete(self._now_ms)
        if ended is not None:
            self._take_turn(ended)

    def _may_take_turn(self) -> bool:
        """The caller's words are a turn unless the bot is busy and was not barged in on, or
        waits for the satisfaction key."""
        if self._goodbye is not None:
            return False
        return not self._thinking and (self._speaking is None or self._barged)

    def _on_key(self, digit: str) -> None:
        """Keys work at any time, the greeting included ("appuyez sur zéro"), except while a
        turn is being answered or the call is already ending. During the satisfaction
        question, 1 to 5 is the caller's score and other keys are ignored."""
        if self._goodbye is not None:
            if digit in SATISFACTION_KEYS:
                self._end_survey(int(digit))
            return
        if self._thinking or (self._speaking and self._speaking.then != "listen"):
            return
        self._held.clear()
        self._thinking = True
        self._endpointer.stop_listening()
        self.line.playout.interrupt()
        self._spawn(self._dtmf_turn(digit))

    def _held_ms(self) -> int:
        return sum(_duration_ms(piece) for piece in self._held)

    def _hold_max_ms(self) -> int:
        """How long a caller may talk without a pause before the bot answers what it has:
        three capped pieces (a minute by default), the transcriber cuts them in pauses."""
        return 3 * self._vad_options.max_utterance_ms

    def _take_turn(self, event: SpeechEnded) -> None:
        if self._held:  # an utterance longer than the cap: the turn is all of it
            pieces, self._held = [*self._held, event], []
            audio = AudioFrame(b"".join(p.audio.pcm for p in pieces), event.audio.sample_rate)
            event = SpeechEnded(audio=audio, start_ms=pieces[0].start_ms, end_ms=event.end_ms,
                                at_ms=event.at_ms, capped=event.capped)
            self._drop_speculation()
        self._thinking = True
        self._endpointer.stop_listening()
        if self._speaking:
            self.line.playout.interrupt()
        speculative = self._speculative
        self._speculative = None
        self._spawn(self._speech_turn(event, speculative))

    def _on_answered(self, turn: Turn) -> None:
        self._thinking = False
        if self._hung_up:
            return
        if turn.reply is None:  # nothing intelligible: keep listening, say nothing
            if not self._speaking:
                self._endpointer.listen(self._now_ms)
            return
        self._result.turns.append(turn)
        reply = turn.reply
        then = "listen"
        if reply.handoff:
            then = "handoff"
        elif reply.end_call:
            question = self._satisfaction_question()
            if question:  # the survey comes before the goodbye, which waits for its key
                self._result.satisfaction_asked = True
                self._goodbye = reply
                self._say("satisfaction", (question,), interruptible=False, then="survey",
                          started=turn)
                return
            then = "goodbye"
        self._say("reply", reply.answer_parts, interruptible=not reply.end_call, then=then,
                  reply=reply, started=turn, follow_up=reply.follow_up_parts)

    def _satisfaction_question(self) -> str:
        """The survey's wording, or "" when editors switched it off (knowledge/messages.yml)."""
        if self._result.satisfaction_asked:
            return ""
        return self.services.dialogue.snapshot.kb.messages.get("satisfaction_question", "")

    def _end_survey(self, score: int | None) -> None:
        """The caller's key (or none): say the goodbye that was waiting."""
        goodbye, self._goodbye = self._goodbye, None
        self._result.satisfaction = score
        if self._speaking is not None:
            self.line.playout.interrupt()  # a key over the question: straight to goodbye
        self._endpointer.stop_listening()
        self._say("reply", goodbye.parts, interruptible=False, then="goodbye", reply=goodbye)

    async def _on_played(self, played: _Played) -> None:
        playback, finished = played.playback, played.finished
        self._result.messages.append(SpokenMessage(
            key=playback.key, text=" ".join(playback.texts),
            action=playback.reply.action if playback.reply else None,
            motif=playback.reply.motif if playback.reply else None,
            message_ms=finished.message_ms, listened_ms=finished.listened_ms,
            interrupted=finished.interrupted))
        if played.follow_up is not None:
            self._result.messages.append(SpokenMessage(
                key="follow_up", text=" ".join(playback.follow_up), action=None,
                motif=playback.reply.motif if playback.reply else None,
                message_ms=played.follow_up.message_ms,
                listened_ms=played.follow_up.listened_ms,
                interrupted=played.follow_up.interrupted))
        current = self._speaking is playback
        if current:
            self._speaking = None
            self._barged = False
        if self._hung_up:
            if self._speaking is None:
                self._finish(Ending.HUNG_UP)
            return
        if played.interrupted or not current:
            return  # barge-in or key: the caller's turn is already on its way
        if playback.then == "survey":
            self._endpointer.listen(self._now_ms)  # a key, or no-input ends the wait
        elif playback.then == "goodbye":
            self._finish(Ending.GOODBYE)
        elif playback.then == "handoff":
            await self._hand_off()
        elif not self._thinking:
            self._endpointer.listen(self._now_ms)

    async def _hand_off(self) -> None:
        if await self.transfer():
            self._finish(Ending.HANDOFF)
            return
        messages = self.services.dialogue.snapshot.kb.messages
        self._say("transfer_failed", (messages["transfer_failed"],), interruptible=True,
                  then="listen")

    async def _fail(self, error: BaseException) -> None:
        """Apologise and hand off; the caller never waits in silence for a broken turn."""
        log.error("%s: turn failed: %r", self.id, error, exc_info=error)
        self._thinking = False
        self._result.error = f"{type(error).__name__}: {error}"
        messages = self.services.dialogue.snapshot.kb.messages
        self.line.playout.interrupt()
        self._say("error_apology", (messages["error_apology"],), interruptible=False,
                  then="handoff")

    def _finish(self, ending: Ending) -> None:
        self._result.ending = ending
        self._done = True

    # --- turns --------------------------------------------------------------------------
    def _speculate(self, audio: AudioFrame) -> None:
        """Start transcribing at a pause: if the caller is done, the text is ready sooner.
        The node's queue runs it only on idle capacity, and may drop it (then: None)."""
        self._drop_speculation()

        async def speculation() -> Transcript | None:
            try:
                transcript = await self.services.transcribe(
                    audio, deadline=time.monotonic() + REPLY_TARGET_S, speculative=True,
                    label=self.id)
            except SpeculationDropped:
                return None
            if not transcript.no_speech and self._endpointer.in_speech:
                try:
                    if await self.services.dialogue.is_whole_question(transcript.text):
                        self._events.put_nowait(_Judged(audio))
                except Exception:  # a judgement only saves time: the turn goes on without it
                    log.exception("%s: could not judge the words so far", self.id)
            return transcript

        task = asyncio.create_task(speculation())
        self._keep(task)  # cancelled with the call even once a turn has taken it over
        self._speculative = (audio, task)

    def _drop_speculation(self) -> None:
        if self._speculative:
            self._speculative[1].cancel()
            self._speculative = None

    async def _speech_turn(self, ended: SpeechEnded,
                           speculative: tuple[AudioFrame, asyncio.Task[Transcript]] | None) -> Turn:
        started = time.perf_counter()
        wait_ms = ended.at_ms - ended.end_ms
        deadline = time.monotonic() - wait_ms / 1000 + REPLY_TARGET_S
        transcript = None
        if speculative and ended.audio.pcm.startswith(speculative[0].pcm) \
                and self.services.scheduler().claim(speculative[0], deadline=deadline):
            transcript = await speculative[1]  # the words so far were all the words
        elif speculative:
            speculative[1].cancel()
        if transcript is None:
            transcript = await self.services.transcribe(ended.audio, deadline=deadline,
                                                        label=self.id)
        if transcript.no_speech:
            return Turn("", None, asr_ms=transcript.asr_ms)
        reply = await self.services.dialogue.respond(self.id, transcript.text)
        return Turn(transcript.text, reply, asr_ms=transcript.asr_ms, nlu_ms=reply.nlu_ms,
                    response_ms=wait_ms + _ms_since(started), wait_ms=wait_ms)

    async def _dtmf_turn(self, digit: str) -> Turn:
        started = time.perf_counter()
        reply = await self.services.dialogue.respond_dtmf(self.id, digit)
        return Turn(f"[touche {digit}]", reply, nlu_ms=reply.nlu_ms if reply else 0,
                    response_ms=_ms_since(started))

    def _spawn(self, turn: Awaitable[Turn]) -> None:
        async def run() -> None:
            try:
                self._events.put_nowait(_Answered(await turn))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._events.put_nowait(_Failed(exc))

        self._keep(asyncio.create_task(run()))

    def _keep(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- speaking -------------------------------------------------------------------------
    def _say(self, key: str, texts: Sequence[str], interruptible: bool, then: str,
             reply: Reply | None = None, started: Turn | None = None,
             follow_up: Sequence[str] = ()) -> None:
        self._played += 1
        playback = _Playback(f"{key}-{self._played}", key, tuple(texts), interruptible, reply,
                             then, tuple(follow_up))
        self._speaking = playback
        self._barge_ms = 0
        self._barged = False
        self._endpointer.stop_listening()
        self._spawn_playback(playback, started)

    def _spawn_playback(self, playback: _Playback, turn: Turn | None) -> None:
        async def play() -> None:
            try:
                played = await self._play(playback, turn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # synthesis failed: nothing to say it with but a transfer
                log.error("%s: cannot speak %s: %r", self.id, playback.key, exc, exc_info=exc)
                self.line.playout.interrupt()
                if playback.key == "error_apology":
                    self._events.put_nowait(_Played(playback, PlaybackFinished(
                        playback.id, 0, 0, interrupted=False)))
                else:
                    self._events.put_nowait(_Failed(exc))
                return
            self._events.put_nowait(played)

        self._keep(asyncio.create_task(play()))

    async def _play(self, playback: _Playback, turn: Turn | None) -> _Played:
        started = time.perf_counter()

        def first_audio() -> None:
            if turn is not None:
                self._record_tts(turn, _ms_since(started))

        messages = [(playback.id, playback.texts)]
        if playback.follow_up:
            messages.append((f"follow_up-{playback.id}", playback.follow_up))
        finished = await speak_in_turn(self.line.playout, self.services.speaker, messages,
                                       first_audio)
        return _Played(playback, finished[0], finished[1] if playback.follow_up else None)

    def _record_tts(self, turn: Turn, tts_ms: int) -> None:
        for index, recorded in enumerate(self._result.turns):
            if recorded is turn:
                updated = dataclasses.replace(turn, tts_ms=tts_ms,
                                              response_ms=turn.response_ms + tts_ms)
                self._result.turns[index] = updated
                log.info("%s: %s %s (%.2f) asr %d ms, tts %d ms, response %d ms", self.id,
                         turn.reply.action, turn.reply.motif, turn.reply.confidence,
                         turn.asr_ms, tts_ms, updated.response_ms)
                if self.on_turn:
                    self.on_turn(updated)


async def speak(playout: Playout, speaker: Speaker, message_id: str, texts: Sequence[str],
                on_first_audio: Callable[[], None] | None = None) -> PlaybackFinished:
    """Play ``texts`` as one message and wait until it is heard, cut or hung up on.

    Cached audio goes out whole at once; uncached text sentence by sentence as it is made.
    If the message is cut while still being synthesised, its ``message_ms`` is the whole
    text's duration (synthesis finishes for the cache anyway), not just what was made.
    """
    [finished] = await speak_in_turn(playout, speaker, [(message_id, texts)], on_first_audio)
    return finished


async def speak_in_turn(playout: Playout, speaker: Speaker,
                        messages: Sequence[tuple[str, Sequence[str]]],
                        on_first_audio: Callable[[], None] | None = None,
                        ) -> list[PlaybackFinished]:
    """Play several messages back to back, each measured on its own (an answer, then its
    follow-up question): the next is queued behind the one playing, so no gap is heard.
    Once one is cut, the rest is not played (``interrupted``, nothing heard)."""
    queued: list[tuple[asyncio.Future[PlaybackFinished], Sequence[str], bool]] = []
    cut = False
    for message_id, texts in messages:
        if cut:
            skipped = asyncio.get_running_loop().create_future()
            skipped.set_result(PlaybackFinished(message_id, 0, 0, interrupted=True))
            queued.append((skipped, texts, True))
            continue
        done = playout.begin(message_id)
        complete = True
        for text in texts:
            async with contextlib.aclosing(speaker.frames(text)) as frames:
                async for frame in frames:
                    if on_first_audio is not None:
                        on_first_audio()
                        on_first_audio = None
                    if done.done():
                        complete = False
                        break
                    playout.push(frame, message_id)
            if done.done():
                complete = False
                break
        playout.end(message_id)
        queued.append((done, texts, complete))
        cut = not complete
    results = []
    for done, texts, complete in queued:
        finished = await done
        if not complete:
            whole_ms = sum(cached.duration_ms for text in texts
                           if (cached := speaker.cached(text)) is not None)
            finished = dataclasses.replace(finished,
                                           message_ms=max(whole_ms, finished.message_ms))
        results.append(finished)
    return results


def _ms_since(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def _duration_ms(event: SpeechEnded) -> int:
    return event.audio.duration_ms
