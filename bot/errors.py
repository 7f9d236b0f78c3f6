"""Errors a person caused and can fix: one family, French messages that say where and what.

Code bugs stay ordinary exceptions; everything here is caught at the CLI edge and
printed as is, so the message must be complete on its own (file, line, what to do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class VoicebotError(Exception):
    """An error meant for a person: the message is French and says what to fix."""


@dataclass(frozen=True)
class KbError:
    """One problem in the knowledge base, at a file and line an editor can open."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "message": self.message}


class KbInvalidError(VoicebotError):
    """The knowledge base has errors; nothing was trained or published."""

    def __init__(self, errors: list[KbError]):
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(
            f"La base de connaissances contient {len(errors)} erreur(s) ; "
            f"rien n'a été publié, le bot garde la dernière version valide.\n{lines}"
        )


class SettingsError(VoicebotError):
    """A configuration value is missing or malformed."""


class NotPublishedError(VoicebotError):
    """No knowledge base has been published yet, so there is nothing to answer from."""

    def __init__(self, state_dir: Path):
        super().__init__(
            f"Aucune base de connaissances publiée dans {state_dir}. "
            "Lancez « voicebot kb publish » (ou « make run », qui le fait)."
        )
