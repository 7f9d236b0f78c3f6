"""The live view: each configured node's ``/health`` read at once, as the page shows it.

A node that does not answer within ``PROBE_TIMEOUT_S`` is shown as unreachable, never
waited for: the page must load even when a node is down (that is when it is needed).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

if TYPE_CHECKING:
    from bot.settings import Settings

PROBE_TIMEOUT_S = 2.0
STATE_LABELS = {"ok": "en service", "degraded": "dégradé", "draining": "en arrêt (vidange)",
                "starting": "démarrage"}


@dataclass
class NodeView:
    url: str
    reachable: bool
    http_status: int = 0
    body: dict[str, Any] = field(default_factory=dict)
    error: str = ""

    @property
    def state(self) -> str:
        if not self.reachable:
            return "injoignable"
        status = str(self.body.get("status", ""))
        return STATE_LABELS.get(status, status or "inconnu")

    @property
    def healthy(self) -> bool:
        return self.reachable and self.body.get("status") == "ok"

    @property
    def calls(self) -> list[dict[str, Any]]:
        return list(self.body.get("live_calls") or [])

    @property
    def engine(self) -> dict[str, Any]:
        return dict(self.body.get("engine") or {})

    @property
    def workers(self) -> list[dict[str, Any]]:
        return list(self.body.get("workers") or [])


def node_urls(settings: Settings) -> list[str]:
    """The configured nodes' base URLs; the local node when none is configured."""
    configured = [url.rstrip("/") for url in settings.console.nodes if url]
    if configured:
        return configured
    t = settings.telephony
    host = "127.0.0.1" if t.http_host in ("0.0.0.0", "::", "") else t.http_host
    return [f"http://{host}:{t.http_port}"]


async def read_nodes(urls: list[str], timeout_s: float = PROBE_TIMEOUT_S) -> list[NodeView]:
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        return list(await asyncio.gather(*(_read(session, url) for url in urls)))


async def _read(session: aiohttp.ClientSession, url: str) -> NodeView:
    try:
        async with session.get(url + "/health") as reply:
            text = await reply.text()
            body = json.loads(text)  # 503 (degraded, draining) still carries the JSON
            if not isinstance(body, dict):
                raise ValueError("not an object")
            return NodeView(url, True, reply.status, body)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        return NodeView(url, False, error=f"pas de réponse ({type(exc).__name__})")
    except ValueError:
        return NodeView(url, False, error="réponse illisible (ce n'est pas un nœud allo-caf ?)")
