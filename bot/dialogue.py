"""The understanding and dialogue core: caller text in, a qualified ``Reply`` out.

Rasa runs in this process: NLU, the rule policy and the tracker come from the trained
model; custom actions (bot/actions) run through an in-process endpoint instead of an HTTP
action server, so a turn costs no network hop and the actions see the live knowledge base.
When a new snapshot names another model, the next turn loads it while the old one keeps
answering, then swaps.

Rasa runs on a thread of its own with its own event loop (``RasaThread``): its classifiers
are synchronous TensorFlow calls of tens of milliseconds, which on the engine's loop would
hold up the audio of every other call. The engine's loop only awaits the result.

Before NLU, a safety net looks for the hand-off trigger phrases the editors list in the
knowledge base (``declencheurs:``, see bot/kb/triggers.py): an urgency or a request for a
person is handed off deterministically, whatever the classifier would have said. The
match goes through Rasa like a keypad digit does (``/urgence{"fiche": "urgence_sociale"}``),
so the tracker, slots and the qualified reply are those of any hand-off.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from bot.actions import build_executor
from bot.actions.base import ENTRY_ENTITY, FALLBACK_INTENT
from bot.kb.model import KnowledgeBase, MotifKind
from bot.kb.store import KbStore, Snapshot
from bot.kb.triggers import TriggerIndex, normalise
from bot.rasa_env import prepare_rasa
from bot.settings import Settings

log = logging.getLogger(__name__)

T = TypeVar("T")
ACTIONS = ("answer", "handoff", "reorient", "clarify", "dialogue")
DTMF_INTENTS = {"0": "conseiller", "*": "repeter"}


@dataclass(frozen=True)
class Reply:
    """The bot's answer to one caller turn, qualified for reporting and billing."""

    parts: tuple[str, ...]
    """What the bot says, in order; each part is cached audio on its own."""
    action: str
    """One of ``answer``, ``handoff``, ``reorient``, ``clarify``, ``dialogue``."""
    motif: str | None
    """The turn's motif id; None only when the bot asked to rephrase."""
    confidence: float
    entry_id: str | None = None
    end_call: bool = False
    """The conversation ends after this reply: goodbye, or a transfer to an advisor."""
    nlu_ms: int = 0
    follow_ups: int = 0
    """How many of the last ``parts`` ask what comes next ("Avez-vous une autre
    question ?"): played as a message of their own, never billed as the answer."""

    @property
    def answer_parts(self) -> tuple[str, ...]:
        return self.parts[:len(self.parts) - self.follow_ups]

    @property
    def follow_up_parts(self) -> tuple[str, ...]:
        return self.parts[len(self.parts) - self.follow_ups:]

    @property
    def text(self) -> str:
        return " ".join(self.parts)

    @property
    def handoff(self) -> bool:
        return self.action == "handoff"

    def as_json(self, text_input: str) -> dict[str, Any]:
        return {"input": text_input, "motif": self.motif, "action": self.action,
                "confidence": self.confidence, "reply": self.text}


def _in_process_endpoint(executor: Any) -> Any:
    """An action endpoint whose request is answered by a local rasa_sdk executor, not HTTP."""
    from rasa.utils.endpoints import EndpointConfig

    class InProcessActions(EndpointConfig):
        async def request(self, method: str = "post", subpath: str | None = None,
                          content_type: str | None = "application/json", compress: bool = False,
                          **kwargs: Any) -> Any:
            return await executor.run(kwargs["json"])

    # Selective domain: Rasa then skips serialising the whole domain for every action call.
    return InProcessActions(url="in-process", enable_selective_domain=True)


class RasaThread:
    """A thread running an event loop where the Rasa agent lives and every turn runs."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="dialogue",
                                        daemon=True)
        self._thread.start()

    async def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the Rasa loop; the caller's loop stays free meanwhile."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, self._loop))


class DialogueError(RuntimeError):
    """The dialogue core failed on a turn; the caller must apologise and hand off."""


class Dialogue:
    """One loaded model serving any number of concurrent conversations, keyed by id."""

    def __init__(self, settings: Settings, store: KbStore):
        self.settings = settings
        self.store = store
        self._agent: Any = None
        self._model_path = None
        self._rasa = RasaThread()
        self._reload_lock: asyncio.Lock | None = None  # made on the Rasa loop, used there
        self._executor = build_executor(
            store.current, settings.dialogue.max_misunderstandings,
            dossier_transfer=bool(settings.telephony.dossier_personnel_uri),
            floors=settings.dialogue)

    @classmethod
    async def load(cls, settings: Settings, store: KbStore | None = None) -> Dialogue:
        prepare_rasa(settings.paths.state_dir)
        dialogue = cls(settings, store or KbStore(settings.paths.state_dir))
        await dialogue._rasa.run(dialogue._ensure_model(dialogue.store.current()))
        return dialogue

    @property
    def snapshot(self) -> Snapshot:
        return self.store.current()

    def message(self, key: str) -> str:
        return self.snapshot.kb.messages[key]

    async def respond(self, conversation_id: str, text: str) -> Reply:
        """Handle one caller utterance in conversation ``conversation_id``."""
        return await self._rasa.run(self._respond(conversation_id, text))

    async def respond_dtmf(self, conversation_id: str, digit: str) -> Reply | None:
        """A keypad digit: 0 asks for an advisor, * repeats. Other keys mean nothing here."""
        if digit not in DTMF_INTENTS:
            return None
        return await self._rasa.run(self._respond_dtmf(conversation_id, digit))

    async def forget(self, conversation_id: str) -> None:
        """Drop a finished conversation's tracker so a long-running service does not grow."""
        await self._rasa.run(self._forget(conversation_id))

    async def is_whole_question(self, text: str) -> bool:
        """Whether ``text`` already makes a question the bot can act on: a hand-off trigger,
        or a FAQ, reorientation or hand-off motif understood with at least
        ``dialogue.whole_question_confidence``. No conversation is touched (the speculative
        transcript at a pause is judged before the caller is known to be done)."""
        return await self._rasa.run(self._is_whole_question(text))

    # --- on the Rasa thread -------------------------------------------------------------------
    async def _respond(self, conversation_id: str, text: str) -> Reply:
        start = time.perf_counter()
        await self._ensure_model(self.store.current())
        cleaned = " ".join(text.replace("/", " ").split())  # "/intent" is Rasa's trigger syntax
        if not cleaned:
            return self._clarify_reply(start)
        kb = self.snapshot.kb
        match = kb.derived("trigger_index", TriggerIndex).match(cleaned)
        if match is not None:  # safety net: hand off, never a FAQ answer
            log.info("hand-off trigger %r -> %s", match.trigger, match.entry.id)
            entities = json.dumps({ENTRY_ENTITY: match.entry.id})
            cleaned = f"/{match.entry.motif}{entities}"
        elif not known_words(kb) & set(normalise(cleaned).split()):
            cleaned = f"/{FALLBACK_INTENT}"  # not one word the base knows: not understood
        messages = await self._agent.handle_text(cleaned, sender_id=conversation_id)
        return self._to_reply(messages or [], start)

    async def _respond_dtmf(self, conversation_id: str, digit: str) -> Reply:
        intent = DTMF_INTENTS[digit]
        start = time.perf_counter()
        await self._ensure_model(self.store.current())
        messages = await self._agent.handle_text(f"/{intent}", sender_id=conversation_id)
        return self._to_reply(messages or [], start)

    async def _is_whole_question(self, text: str) -> bool:
        await self._ensure_model(self.store.current())
        cleaned = " ".join(text.replace("/", " ").split())
        kb = self.snapshot.kb
        if not cleaned or not known_words(kb) & set(normalise(cleaned).split()):
            return False
        if kb.derived("trigger_index", TriggerIndex).match(cleaned) is not None:
            return True
        intent = (await self._agent.parse_message(cleaned)).get("intent") or {}
        motif = kb.motifs.get(str(intent.get("name")))
        return motif is not None and motif.kind is not MotifKind.DIALOGUE \
            and float(intent.get("confidence") or 0.0) >= \
            self.settings.dialogue.whole_question_confidence

    async def _forget(self, conversation_id: str) -> None:
        trackers = self.trackers()
        if trackers is not None:
            trackers.pop(conversation_id, None)

    def trackers(self) -> dict[str, Any] | None:
        """The in-memory trackers by conversation id. Rasa wraps its store in a
        ``FailSafeTrackerStore``: the dict is that wrapper's inner store (looking for it on
        the wrapper found nothing, and every call's tracker stayed in memory for good)."""
        store = self._agent.tracker_store if self._agent else None
        inner = getattr(store, "_tracker_store", store)
        trackers = getattr(inner, "store", None)
        return trackers if isinstance(trackers, dict) else None

    async def _ensure_model(self, snapshot: Snapshot) -> None:
        if snapshot.model_path == self._model_path:
            return
        if self._reload_lock is None:
            self._reload_lock = asyncio.Lock()
        async with self._reload_lock:
            if snapshot.model_path == self._model_path:
                return
            from rasa.core.agent import Agent

            log.info("loading model %s", snapshot.model_path)
            agent = await asyncio.to_thread(Agent.load, str(snapshot.model_path),
                                            action_endpoint=_in_process_endpoint(self._executor))
            if self._agent is not None:  # carry live conversations over to the new model
                agent.tracker_store = self._agent.tracker_store
                agent.processor.tracker_store = self._agent.tracker_store
            self._agent, self._model_path = agent, snapshot.model_path

    def _clarify_reply(self, start: float) -> Reply:
        return Reply((self.message("clarify"),), "clarify", None, 0.0, nlu_ms=_ms_since(start))

    def _to_reply(self, messages: list[dict[str, Any]], start: float) -> Reply:
        texts = [m["text"] for m in messages if m.get("text")]
        meta = next((m["custom"] for m in reversed(messages)
                     if isinstance(m.get("custom"), dict)), None)
        if meta is None or not texts:  # an action failed: Rasa logged it and went on silently
            raise DialogueError(f"no qualified reply from the dialogue core: {messages!r}")
        return Reply(
            parts=tuple(texts),
            action=meta["action"],
            motif=meta["motif"],
            confidence=float(meta.get("confidence") or 0.0),
            entry_id=meta.get("entry"),
            end_call=bool(meta.get("end_call")),
            nlu_ms=_ms_since(start),
            follow_ups=min(int(meta.get("follow_ups") or 0), len(texts) - 1),
        )


def _ms_since(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)


def known_words(kb: KnowledgeBase) -> frozenset[str]:
    """Every word of the base's questions and triggers, normalised.

    An utterance with none of them ("zkrv qxwj blorf", "pfff", a transcription of line
    noise) carries nothing to classify, yet DIET still puts a confident label on it, most
    often ``hors_sujet``, whose reorientation resets the misunderstanding count. It is
    treated as not understood instead, so two in a row reach an advisor.
    """
    def build(base: KnowledgeBase) -> frozenset[str]:
        return frozenset(word for entry in base.entries
                         for text in (*entry.questions, *entry.triggers)
                         for word in normalise(text).split())

    return kb.derived("known_words", build)
