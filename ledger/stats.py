"""What supervisors read off the ledger: per-call facts, flags, and figures by period and motif.

One read per request: the bot calls of whole Paris days with their statistics (migration
0005), satisfaction (0004) and whether a transcript or recording is kept; the SC3.2 rule
runs over the same days so "productive" means exactly what billing means. Figures are
plain counts and millisecond lists; percentages and percentiles are computed at the end.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from ledger import store
from ledger.crypto import Sealed
from ledger.months import Month
from ledger.records import CallStats
from ledger.rule import Channel, Contact, Verdict, classify
from ledger.schema import call_stats, interactions, recordings, transcripts

if TYPE_CHECKING:
    from bot.pipeline import ConversationResult
    from ledger.api import Ledger

LONG_SILENCE_MS = 4000
"""A reply that kept the caller waiting this long is a long silence (as is a re-prompt
after the caller said nothing: ``no_input_prompts``)."""
REPEATED_MISUNDERSTANDING = 2
"""Misunderstood turns in one call from which the call is flagged."""
SEARCH_LIMIT = 20_000
"""Transcripts read by one search at most (the newest of the period)."""
SAMPLE_MIN, SAMPLE_MAX = 25, 50
"""The Cnaf's monthly quality sample: between 25 and 50 calls."""

FLAG_SILENCE = "silence"
FLAG_MISUNDERSTOOD = "misunderstood"
FLAG_FRUSTRATION = "frustration"
FLAG_HANGUP = "hangup_during_answer"
FLAGS = (FLAG_SILENCE, FLAG_MISUNDERSTOOD, FLAG_FRUSTRATION, FLAG_HANGUP)
GRANULARITIES = ("day", "week", "month")
TOTAL = "total"

_SATISFACTION = sa.table("ledger_call_satisfaction", sa.column("call_id"), sa.column("score"))


class CallFacts(NamedTuple):
    """One bot call as the dashboards and the analysis pages show it (a NamedTuple: a month
    holds 500 k of them)."""

    call_id: str
    started_at_ms: int
    ended_at_ms: int
    motif: str
    message_ms: int
    listened_ms: int
    handoff: bool
    outcome: str | None
    productive: bool
    stats: CallStats | None
    """None for calls recorded before statistics existed, or imported from CSV."""
    satisfaction: int | None
    has_transcript: bool
    has_recording: bool

    @property
    def duration_ms(self) -> int:
        return self.ended_at_ms - self.started_at_ms

    @property
    def hangup_during_answer(self) -> bool:
        """The caller hung up while the bot's answer was playing (not a transfer)."""
        return (self.message_ms > 0 and self.listened_ms < self.message_ms
                and not self.handoff and self.outcome in (None, "hangup", "answered",
                                                          "reoriented"))

    @property
    def flags(self) -> tuple[str, ...]:
        found = []
        stats = self.stats
        if stats is not None:
            if stats.no_input_prompts or any(ms >= LONG_SILENCE_MS for ms in stats.reply_ms):
                found.append(FLAG_SILENCE)
            if stats.misunderstood_turns >= REPEATED_MISUNDERSTANDING:
                found.append(FLAG_MISUNDERSTOOD)
            if stats.frustration_words:
                found.append(FLAG_FRUSTRATION)
        if self.hangup_during_answer:
            found.append(FLAG_HANGUP)
        return tuple(found)


# --- reading ---------------------------------------------------------------------------------
def read_calls(ledger: Ledger, first: date, last: date, *, motif: str | None = None
               ) -> list[CallFacts]:
    """Bot calls started on Paris days ``first`` to ``last`` (both included), in time order.

    One pass over the days' contacts (advisor ones too: rule 3 needs them), joined with the
    statistics and satisfaction tables; which calls keep a transcript or a recording comes
    from those tables' own time index.
    """
    start_ms = ledger.calendar.day_bounds_ms(first)[0]
    end_ms = ledger.calendar.day_bounds_ms(last)[1]
    try:
        ledger.ensure_schema()
        with ledger.engine.connect() as conn:
            rows = _fetch(conn, _calls_query(start_ms, end_ms, conn))
            kept = {table.name: set(conn.execute(
                sa.select(table.c.call_id).where(table.c.started_at_ms >= start_ms,
                                                 table.c.started_at_ms < end_ms)).scalars())
                    for table in (transcripts, recordings)}
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    new = tuple.__new__  # Contact._make without its Python-level checks (store.py does so)
    contacts = [new(Contact, row[:9]) for row in rows]
    verdicts = classify(contacts, ledger.calendar,
                        any_later_call=ledger.options.rule3_any_later_call)
    return _facts(rows, verdicts, motif, kept[transcripts.name], kept[recordings.name])


def read_call(ledger: Ledger, call_id: str) -> CallFacts | None:
    """One call, judged with the other contacts of its day."""
    try:
        ledger.ensure_schema()
        with ledger.engine.connect() as conn:
            started = conn.execute(sa.select(interactions.c.started_at_ms).where(
                interactions.c.call_id == call_id,
                interactions.c.channel == Channel.BOT.value)).scalar()
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    if started is None:
        return None
    day = ledger.calendar.date_of(int(started))
    return next((c for c in read_calls(ledger, day, day) if c.call_id == call_id), None)


def _calls_query(start_ms: int, end_ms: int, conn: Connection) -> sa.Select:
    """The contact's columns in ``Contact`` order, then the call's statistics and score."""
    i, s = interactions, call_stats
    columns = [*(i.c[name] for name in Contact._fields), i.c.outcome, s.c.turns,
               s.c.misunderstood_turns, s.c.reply_ms, s.c.no_input_prompts,
               s.c.frustration_words]
    joined = i.outerjoin(s, s.c.call_id == i.c.call_id)
    if _has_satisfaction(conn):
        columns.append(_SATISFACTION.c.score)
        joined = joined.outerjoin(_SATISFACTION, _SATISFACTION.c.call_id == i.c.call_id)
    return (sa.select(*columns).select_from(joined)
            .where(i.c.started_at_ms >= start_ms, i.c.started_at_ms < end_ms)
            .order_by(i.c.started_at_ms, i.c.call_id))


def _fetch(conn: Connection, query: sa.Select) -> list[tuple]:
    """All rows as plain tuples through the DB-API cursor: SQLAlchemy's result rows would
    double the page's time for a month (store.contacts_between does the same). The query's
    only parameters are integers, rendered inline."""
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        return cursor.fetchall()
    finally:
        cursor.close()


def _has_satisfaction(conn: Connection) -> bool:
    """Migration 0004 (the satisfaction question) may not be applied on an older database."""
    return sa.inspect(conn).has_table(_SATISFACTION.name)


def _facts(rows: Sequence[Sequence], verdicts: Sequence[Verdict | None], motif: str | None,
           with_transcript: set[str], with_recording: set[str]) -> list[CallFacts]:
    """Rows unpacked by position: attribute access on 500 k result rows would cost more than
    the query."""
    calls = []
    append = calls.append
    no_score = (None,)
    for row, verdict in zip(rows, verdicts, strict=True):
        if verdict is None or (motif and row[7] != motif):
            continue  # an advisor contact (rule 3 only), or another motif
        (_channel, _caller, started, ended, message, listened, handoff, motif_of, call_id,
         outcome, turns, misunderstood, replies, prompts, frustration) = row[:15]
        stats = None if turns is None else CallStats(
            turns, misunderstood, parse_ms(replies), prompts, frustration)
        append(CallFacts(call_id, started, ended, motif_of, message, listened, bool(handoff),
                         outcome, verdict.productive, stats, (row[15:] or no_score)[0],
                         call_id in with_transcript, call_id in with_recording))
    return calls


def parse_ms(text: str | None) -> tuple[int, ...]:
    return tuple(map(int, text.split(","))) if text else ()


def conversation_stats(result: ConversationResult, misunderstood_text: str,
                       frustration_words: Sequence[str]) -> CallStats:
    """A finished conversation's statistics. ``misunderstood_text`` is the hand-off message
    said after too many misunderstandings (``handoff_misunderstood``)."""
    replied = [turn for turn in result.turns if turn.reply is not None]
    misunderstood = sum(
        1 for turn in replied
        if turn.reply.action == "clarify"
        or (turn.reply.action == "handoff" and turn.reply.text == misunderstood_text))
    prompts = sum(1 for message in result.messages
                  if message.key in ("no_input", "no_input_handoff"))
    return CallStats(
        turns=len(replied), misunderstood_turns=misunderstood,
        reply_ms=tuple(int(turn.response_ms) for turn in replied), no_input_prompts=prompts,
        frustration_words=count_frustration((t.transcript for t in result.turns),
                                            frustration_words))


def count_frustration(texts: Iterable[str], words: Sequence[str]) -> int:
    """Caller turns holding at least one of ``words`` (accents and case ignored)."""
    needles = [normalise(w) for w in words if w.strip()]
    return sum(1 for text in texts if any(n in normalise(text) for n in needles))


def normalise(text: str) -> str:
    """Lower case, no accents, no punctuation, single spaces around words: whole words and
    phrases are then found with ``in``."""
    import re
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", text.lower().replace("’", "'"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return " " + " ".join(re.sub(r"[^\w']+", " ", plain).split()) + " "


# --- figures ---------------------------------------------------------------------------------
@dataclass
class Figures:
    """Sums over a set of calls; rates and percentiles are derived on demand."""

    calls: int = 0
    answered: int = 0
    handoffs: int = 0
    reoriented: int = 0
    productive: int = 0
    hangups_during_answer: int = 0
    turns: int = 0
    misunderstood_turns: int = 0
    reply_ms: list[int] = field(default_factory=list)
    satisfaction: list[int] = field(default_factory=list)

    def add(self, call: CallFacts) -> None:
        self.calls += 1
        self.answered += call.outcome == "answered"
        self.handoffs += call.handoff
        self.reoriented += call.outcome == "reoriented"
        self.productive += call.productive
        self.hangups_during_answer += call.hangup_during_answer
        if call.stats is not None:
            self.turns += call.stats.turns
            self.misunderstood_turns += call.stats.misunderstood_turns
            self.reply_ms.extend(call.stats.reply_ms)
        if call.satisfaction is not None:
            self.satisfaction.append(call.satisfaction)

    def rate(self, count: int) -> float | None:
        """Percent of the calls; None without calls."""
        return 100 * count / self.calls if self.calls else None

    def reply_percentile(self, percent: int) -> int | None:
        return percentile(self.reply_ms, percent)

    @property
    def satisfaction_mean(self) -> float | None:
        return sum(self.satisfaction) / len(self.satisfaction) if self.satisfaction else None


def percentile(values: Sequence[int], percent: int) -> int | None:
    """Nearest-rank percentile (a value that occurred); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-percent * len(ordered) // 100))  # ceil without floats
    return ordered[rank - 1]


def period_of(day: date, granularity: str) -> str:
    """``2024-03-15``, ``2024-W11`` (ISO week) or ``2024-03``."""
    if granularity == "day":
        return day.isoformat()
    if granularity == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"
    if granularity == "month":
        return f"{day.year:04d}-{day.month:02d}"
    raise ValueError(f"unknown granularity {granularity}")


def periods_between(first: date, last: date, granularity: str) -> list[str]:
    """Every period touching [first, last], in order, with or without calls."""
    seen: dict[str, None] = {}
    day = first
    while day <= last:
        seen[period_of(day, granularity)] = None
        day += timedelta(days=1)
    return list(seen)


def by_motif(calls: Iterable[CallFacts]) -> dict[str, Figures]:
    figures: dict[str, Figures] = defaultdict(Figures)
    for call in calls:
        figures[call.motif].add(call)
    return dict(sorted(figures.items()))


def total(calls: Iterable[CallFacts]) -> Figures:
    figures = Figures()
    for call in calls:
        figures.add(call)
    return figures


# --- transcript search -----------------------------------------------------------------------
@dataclass(frozen=True)
class TranscriptHit:
    call_id: str
    started_at_ms: int
    motif: str
    lines: tuple[str, ...]
    """The transcript's lines that hold a searched word (or its first lines without words)."""


@dataclass(frozen=True)
class SearchResult:
    hits: list[TranscriptHit]
    scanned: int
    """Transcripts decrypted and read."""
    truncated: bool
    """More transcripts matched the period than ``limit``: the newest were read."""


def search_transcripts(ledger: Ledger, first: date, last: date, words: str, reader: str, *,
                       motif: str | None = None, limit: int = SEARCH_LIMIT) -> SearchResult:
    """Transcripts of bot calls on days ``first``..``last`` holding every word of ``words``
    (accents and case ignored, a word also finds longer ones: « allocation » finds
    « allocations »), newest first. Decrypted here, in memory; the search is
    journaled with who asked, like a transcript read."""
    needles = [n for n in normalise(words).split() if n]
    start_ms = ledger.calendar.day_bounds_ms(first)[0]
    end_ms = ledger.calendar.day_bounds_ms(last)[1]
    i, t = interactions, transcripts
    query = (sa.select(t.c.call_id, t.c.key_id, t.c.nonce, t.c.ciphertext, i.c.started_at_ms,
                       i.c.motif)
             .select_from(t.join(i, i.c.call_id == t.c.call_id))
             .where(i.c.started_at_ms >= start_ms, i.c.started_at_ms < end_ms)
             .order_by(i.c.started_at_ms.desc(), i.c.call_id).limit(limit + 1))
    if motif:
        query = query.where(i.c.motif == motif)
    hits = []
    try:
        ledger.ensure_schema()
        with ledger.engine.begin() as conn:
            rows = conn.execute(query).fetchall()
            for r in rows[:limit]:
                text = ledger.cipher.open(r.call_id, Sealed(r.key_id, bytes(r.nonce),
                                                            bytes(r.ciphertext)))
                lines = text.splitlines()
                if not all(n in normalise(text) for n in needles):
                    continue
                found = [line for line in lines if any(n in normalise(line) for n in needles)]
                if not needles:
                    found = lines[:2]
                hits.append(TranscriptHit(r.call_id, int(r.started_at_ms), r.motif,
                                          tuple(found)))
            store.write_journal(conn, store.now_ms(), "transcript_search", {
                "reader": reader, "first": first.isoformat(), "last": last.isoformat(),
                "motif": motif, "scanned": min(len(rows), limit), "found": len(hits)})
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    return SearchResult(hits, min(len(rows), limit), len(rows) > limit)


# --- the monthly quality sample --------------------------------------------------------------
def sample_seed(month: Month) -> int:
    """The same month always draws the same calls (given the same calls)."""
    digest = hashlib.sha256(f"allo-caf quality sample {month}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def quality_sample(calls: Sequence[CallFacts], month: Month, size: int) -> list[CallFacts]:
    """``size`` calls of the month drawn at random with the month's seed, in time order."""
    size = min(max(size, SAMPLE_MIN), SAMPLE_MAX)
    ordered = sorted(calls, key=lambda c: (c.started_at_ms, c.call_id))
    if len(ordered) <= size:
        return ordered
    chosen = random.Random(sample_seed(month)).sample(range(len(ordered)), size)
    return [ordered[i] for i in sorted(chosen)]


