"""The access log's hash chain: what an entry's SHA-256 covers, and how a chain is checked.

Each entry's hash covers its number, instant, user, role, action, object, source address,
outcome and the previous entry's hash, so changing, deleting or moving an entry breaks the
chain at that entry. Rewriting the whole chain from some entry on (recomputing every hash)
is caught by the anchors: the latest hash written out once a day, in a table and in a file
outside the database. A retention purge leaves a checkpoint (the last purged entry's
number and hash) where the kept chain starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

GENESIS = "0" * 64
"""``prev_hash`` of the very first entry."""
PARIS = ZoneInfo("Europe/Paris")


@dataclass(frozen=True)
class Entry:
    seq: int
    at_ms: int
    user_name: str
    role: str
    action: str
    object: str
    source: str
    outcome: str
    prev_hash: str
    hash: str = ""

    def computed_hash(self) -> str:
        fields = [self.seq, self.at_ms, self.user_name, self.role, self.action, self.object,
                  self.source, self.outcome, self.prev_hash]
        text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    @property
    def when(self) -> str:
        return format_ms(self.at_ms)


@dataclass(frozen=True)
class Anchor:
    seq: int
    hash: str
    day: str
    origin: str
    """Where it was read: « la base » or the anchor file's path."""


def format_ms(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, PARIS).strftime("%Y-%m-%d %H:%M:%S")


def chain_problems(entries: Iterable[Entry], start_seq: int = 1,
                   start_hash: str = GENESIS, anchors: Iterable[Anchor] = ()) -> list[str]:
    """French descriptions of what is wrong, the first changed/deleted/moved entry first.

    ``start_seq``/``start_hash``: where the kept chain starts (1 and the genesis hash, or the
    entry after the latest purge checkpoint and the checkpoint's hash).
    """
    problems: list[str] = []
    expected_seq, prev_hash = start_seq, start_hash
    previous: Entry | None = None
    hashes: dict[int, str] = {}
    for entry in entries:
        own_ok = entry.computed_hash() == entry.hash
        if not own_ok:
            problems.append(f"l'entrée n° {entry.seq} ({entry.when}) a été modifiée ou déplacée "
                            "(son empreinte ne correspond plus à son contenu).")
        elif entry.seq > expected_seq:
            gone = (f"l'entrée n° {expected_seq}" if entry.seq == expected_seq + 1
                    else f"les entrées n° {expected_seq} à {entry.seq - 1}")
            problems.append(f"{gone} a/ont été supprimée(s) (le journal passe de l'entrée "
                            f"n° {expected_seq - 1} à l'entrée n° {entry.seq}).")
        elif entry.seq < expected_seq:
            problems.append(f"l'entrée n° {entry.seq} ({entry.when}) est en double ou déplacée.")
        elif entry.prev_hash != prev_hash:
            if previous is not None:
                problems.append(
                    f"l'entrée n° {previous.seq} ({previous.when}) a été modifiée, remplacée "
                    f"ou déplacée (l'entrée n° {entry.seq} avait enregistré une autre empreinte "
                    "pour elle).")
            else:
                problems.append(
                    f"l'entrée n° {entry.seq} ({entry.when}) ne suit pas le point de reprise de "
                    f"la dernière purge (n° {start_seq - 1}) : entrées supprimées ou réécrites.")
        hashes[entry.seq] = entry.hash
        expected_seq, prev_hash, previous = entry.seq + 1, entry.hash, entry
    last_seq = expected_seq - 1
    for anchor in anchors:
        if anchor.seq > last_seq:
            problems.append(
                f"l'entrée n° {anchor.seq}, ancrée le {anchor.day} ({anchor.origin}), a été "
                f"supprimée : le journal s'arrête à l'entrée n° {last_seq}.")
        elif anchor.seq == start_seq - 1:
            if anchor.hash != start_hash:
                problems.append(
                    f"le point de reprise de la purge (entrée n° {anchor.seq}) ne correspond pas "
                    f"à l'ancre du {anchor.day} ({anchor.origin}).")
        elif anchor.seq >= start_seq and hashes.get(anchor.seq) != anchor.hash:
            problems.append(
                f"l'entrée n° {anchor.seq} ne correspond plus à l'ancre du {anchor.day} "
                f"({anchor.origin}) : le journal a été réécrit à partir de cette entrée "
                "ou avant.")
    return problems
