"""The service's HTTP side: ``/health`` for load balancers and ``/metrics`` for Prometheus.

``CallMetrics`` is a small registry the call flow updates on the event loop (no lock, no
global registry: one per service, passed down); the endpoint itself says how many calls
are in progress and whether it is draining. ``/health`` answers 503 while draining, so a
load balancer stops sending new calls to a node being updated.
"""

from __future__ import annotations

import bisect
import json
from collections import Counter
from typing import Protocol

from aiohttp import web

from telephony_adapter.options import TelephonyOptions

RESPONSE_BUCKETS_MS = (250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
"""Upper bounds of the response-time histogram; 1.5 s is the p95 target per call."""
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ServiceStatus(Protocol):
    """What the endpoint tells about itself (``SipEndpoint`` is one)."""

    @property
    def active_calls(self) -> int: ...

    @property
    def draining(self) -> bool: ...


class CallMetrics:
    """Counters and timings of finished calls, rendered in Prometheus text format."""

    def __init__(self, buckets_ms: tuple[int, ...] = RESPONSE_BUCKETS_MS):
        self.buckets_ms = tuple(sorted(buckets_ms))
        self.calls = Counter[str]()
        self.transfers = Counter[str]()
        self._bucket_counts = [0] * (len(self.buckets_ms) + 1)  # the last is +Inf
        self.response_count = 0
        self.response_sum_ms = 0

    def count_call(self, outcome: str) -> None:
        """A call ended: ``answered``, ``handoff``, ``abandoned``, ``out_of_hours``…"""
        self.calls[outcome] += 1

    def count_transfer(self, outcome: str) -> None:
        """A transfer finished: ``accepted``, ``refused``, ``busy``, ``no_answer``, ``timeout``."""
        self.transfers[outcome] += 1

    def observe_response_ms(self, response_ms: int) -> None:
        """Time from the end of the caller's turn to the first audio of the bot's answer."""
        self._bucket_counts[bisect.bisect_left(self.buckets_ms, response_ms)] += 1
        self.response_count += 1
        self.response_sum_ms += response_ms

    def render(self, status: ServiceStatus) -> str:
        lines = [
            "# HELP allo_caf_calls_in_progress Calls currently up on this node.",
            "# TYPE allo_caf_calls_in_progress gauge",
            f"allo_caf_calls_in_progress {status.active_calls}",
            "# HELP allo_caf_draining 1 while the node refuses new calls before stopping.",
            "# TYPE allo_caf_draining gauge",
            f"allo_caf_draining {int(status.draining)}",
            "# HELP allo_caf_calls_total Finished calls by outcome.",
            "# TYPE allo_caf_calls_total counter",
        ]
        lines += _labelled("allo_caf_calls_total", self.calls)
        lines += [
            "# HELP allo_caf_transfers_total Transfers to an advisor by outcome.",
            "# TYPE allo_caf_transfers_total counter",
        ]
        lines += _labelled("allo_caf_transfers_total", self.transfers)
        lines += [
            "# HELP allo_caf_response_seconds From the end of the caller's turn to the bot's "
            "answer.",
            "# TYPE allo_caf_response_seconds histogram",
        ]
        cumulative = 0
        for bound_ms, count in zip(self.buckets_ms, self._bucket_counts[:-1], strict=True):
            cumulative += count
            bound = f"{bound_ms / 1000:g}"
            lines.append(f'allo_caf_response_seconds_bucket{{le="{bound}"}} {cumulative}')
        lines.append(f'allo_caf_response_seconds_bucket{{le="+Inf"}} {self.response_count}')
        lines.append(f"allo_caf_response_seconds_sum {self.response_sum_ms / 1000:g}")
        lines.append(f"allo_caf_response_seconds_count {self.response_count}")
        return "\n".join(lines) + "\n"


def _labelled(name: str, counts: Counter[str]) -> list[str]:
    return [f'{name}{{outcome="{key}"}} {value}' for key, value in sorted(counts.items())]


class HealthServer:
    """``/health`` (JSON) and ``/metrics`` (Prometheus text) on ``http_host:http_port``."""

    def __init__(self, options: TelephonyOptions, status: ServiceStatus, metrics: CallMetrics):
        self.options = options
        self.status = status
        self.metrics = metrics
        self.port = options.http_port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.options.http_host, self.options.http_port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _health(self, request: web.Request) -> web.Response:
        draining = self.status.draining
        body = {
            "status": "draining" if draining else "ok",
            "calls_in_progress": self.status.active_calls,
            "draining": draining,
        }
        return web.Response(
            text=json.dumps(body), status=503 if draining else 200, content_type="application/json"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(self.status).encode(),
            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE},
        )
