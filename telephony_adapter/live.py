"""The calls the engine is running now, as the supervisors' live view shows them.

``CallFlow`` keeps one ``LiveCall`` per call from the ring to the ledger row and updates
its motif at each understood turn; the engine's ``/status`` and the node's ``/health``
list them (``live_calls``). No caller number, no words: a call id, a worker, a duration
and a motif.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


@dataclass
class LiveCall:
    call_id: str
    worker: str
    """The SIP media worker holding the call (empty when the engine holds it itself)."""
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started_monotonic: float = field(default_factory=time.monotonic)
    motif: str | None = None
    """The motif of the caller's last understood question; None before the first."""
    turns: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "worker": self.worker,
                "started_at": self.started_at.isoformat(timespec="seconds"),
                "duration_s": round(time.monotonic() - self.started_monotonic, 1),
                "motif": self.motif, "turns": self.turns}
