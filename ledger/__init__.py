"""The interaction ledger and the SC3.2 billing extraction (docs/ledger.md).

What the voice pipeline and the SIP adapter use::

    from ledger import Interaction, Ledger, Outcome
    ledger = Ledger.open(settings)
    await ledger.arecord_interaction(Interaction(call_id=..., caller_number=..., ...))

Names are imported lazily: ``bot.settings`` imports ``ledger.options`` at every start-up,
and SQLAlchemy has no business slowing ``voicebot kb check``.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Ledger": "api", "LedgerUnavailableError": "api", "RecordResult": "api",
    "ReplayResult": "api", "Interaction": "records", "AdvisorContact": "records",
    "Outcome": "records", "CallStats": "records",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(name)
    module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
    return getattr(module, name)
