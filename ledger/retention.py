"""The retention purge: transcripts and recordings go after N calendar months; billing rows stay.

The cut-off is a Paris day: today minus ``retention_months`` months (clamped to the end of
a shorter month). Everything of calls that started before that day's midnight is purged.
Recording files are deleted only inside the recordings directory, whatever a row says.
"""

from __future__ import annotations

import calendar as _calendar
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from ledger import store
from ledger.schema import recordings, transcripts

if TYPE_CHECKING:
    from ledger.api import Ledger

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PurgeResult:
    cutoff: date
    """Data of calls started before this Paris day were purged."""
    transcripts: int
    recordings: int
    files_deleted: int
    dry_run: bool

    def summary(self) -> str:
        verb = "seraient supprimés" if self.dry_run else "supprimés"
        return (f"Appels antérieurs au {self.cutoff.isoformat()} : {self.transcripts} "
                f"transcription(s) et {self.recordings} enregistrement(s) {verb} "
                f"({self.files_deleted} fichier(s) audio) ; lignes de facturation conservées.")


def retention_cutoff(today: date, months: int) -> date:
    index = today.year * 12 + today.month - 1 - months
    year, month = index // 12, index % 12 + 1
    return date(year, month, min(today.day, _calendar.monthrange(year, month)[1]))


def purge(ledger: Ledger, today: date, recordings_dir: Path, *, dry_run: bool = False
          ) -> PurgeResult:
    cutoff = retention_cutoff(today, ledger.options.retention_months)
    cutoff_ms = ledger.calendar.day_bounds_ms(cutoff)[0]
    try:
        ledger.ensure_schema()
        with ledger.engine.begin() as conn:
            old_transcripts = transcripts.c.started_at_ms < cutoff_ms
            old_recordings = recordings.c.started_at_ms < cutoff_ms
            n_transcripts = conn.execute(
                sa.select(sa.func.count()).select_from(transcripts).where(old_transcripts)
            ).scalar_one()
            paths = [r.path for r in conn.execute(
                sa.select(recordings.c.path).where(old_recordings))]
            if not dry_run:
                conn.execute(transcripts.delete().where(old_transcripts))
                conn.execute(recordings.delete().where(old_recordings))
                store.write_journal(conn, store.now_ms(), "purge", {
                    "cutoff": cutoff.isoformat(), "transcripts": n_transcripts,
                    "recordings": len(paths)})
    except SQLAlchemyError as exc:
        raise ledger.unavailable(exc) from None
    deleted = 0
    root = recordings_dir.resolve()
    for text in paths:
        path = Path(text).resolve()
        if not path.is_relative_to(root):
            log.warning("recording outside %s not deleted: %s", root, path)
            continue
        if path.exists():
            deleted += 1
            if not dry_run:
                path.unlink()
    return PurgeResult(cutoff, n_transcripts, len(paths), deleted, dry_run)
