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
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

if TYPE_CHECKING:
    from asr.scheduler import AsrStats, Histogram

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
        """The endpoint's gauges, then the counters."""
        lines = [
            "# HELP allo_caf_calls_in_progress Calls currently up on this node.",
            "# TYPE allo_caf_calls_in_progress gauge",
            f"allo_caf_calls_in_progress {status.active_calls}",
            "# HELP allo_caf_draining 1 while the node refuses new calls before stopping.",
            "# TYPE allo_caf_draining gauge",
            f"allo_caf_draining {int(status.draining)}",
        ]
        return "\n".join(lines) + "\n" + self.render_counters()

    def render_counters(self) -> str:
        """Finished calls, transfers and the response-time histogram."""
        lines = [
            "# HELP allo_caf_calls_total Finished calls by outcome.",
            "# TYPE allo_caf_calls_total counter",
        ]
        lines += _labelled("allo_caf_calls_total", self.calls)
        lines += [
            "# HELP allo_caf_transfers_total Transfers to an advisor by outcome.",
            "# TYPE allo_caf_transfers_total counter",
        ]
        lines += _labelled("allo_caf_transfers_total", self.transfers)
        lines += histogram_lines(
            "allo_caf_response_seconds",
            "From the end of the caller's turn to the bot's answer.",
            self.buckets_ms, self._bucket_counts, self.response_sum_ms)
        return "\n".join(lines) + "\n"


def histogram_lines(name: str, help_text: str, buckets_ms: tuple[int, ...],
                    counts: list[int], sum_ms: float) -> list[str]:
    """A Prometheus histogram in seconds from per-bucket counts (the last one is +Inf)."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    cumulative = 0
    for bound_ms, count in zip(buckets_ms, counts[:-1], strict=True):
        cumulative += count
        lines.append(f'{name}_bucket{{le="{bound_ms / 1000:g}"}} {cumulative}')
    total = cumulative + counts[-1]
    lines.append(f'{name}_bucket{{le="+Inf"}} {total}')
    lines.append(f"{name}_sum {sum_ms / 1000:g}")
    lines.append(f"{name}_count {total}")
    return lines


def render_asr(stats: AsrStats) -> str:
    """The node's ASR queue (asr/scheduler.py) in Prometheus text."""
    lines = [
        "# HELP allo_caf_asr_queue_depth Transcriptions waiting for the ASR, by kind.",
        "# TYPE allo_caf_asr_queue_depth gauge",
        f'allo_caf_asr_queue_depth{{kind="turn"}} {stats.queued_real}',
        f'allo_caf_asr_queue_depth{{kind="speculative"}} {stats.queued_speculative}',
        "# HELP allo_caf_asr_running Utterances being transcribed now.",
        "# TYPE allo_caf_asr_running gauge",
        f"allo_caf_asr_running {stats.running}",
        "# HELP allo_caf_asr_jobs_total Transcriptions by result (late: after their deadline).",
        "# TYPE allo_caf_asr_jobs_total counter",
    ]
    lines += [f'allo_caf_asr_jobs_total{{result="{name}"}} {getattr(stats, name)}'
              for name in ("done", "failed", "cancelled", "late")]
    lines += [
        "# HELP allo_caf_asr_speculative_total Speculative transcriptions at pauses: run on "
        "idle capacity, dropped, used by the turn.",
        "# TYPE allo_caf_asr_speculative_total counter",
        f'allo_caf_asr_speculative_total{{result="run"}} {stats.speculative_run}',
        f'allo_caf_asr_speculative_total{{result="dropped"}} {stats.speculative_dropped}',
        f'allo_caf_asr_speculative_total{{result="used"}} {stats.speculative_used}',
    ]
    lines += _histogram("allo_caf_asr_queue_wait_seconds",
                        "From a turn's arrival in the ASR queue to the start of its "
                        "transcription.", stats.queue_wait_ms, 1000)
    lines += _histogram("allo_caf_asr_seconds", "Wall time of a transcription.",
                        stats.asr_ms, 1000)
    lines += _histogram("allo_caf_asr_batch_size", "Utterances per batched Whisper pass.",
                        stats.batch_size, 1)
    return "\n".join(lines) + "\n"


def _histogram(name: str, help_text: str, histogram: Histogram, unit: int) -> list[str]:
    """A scheduler ``Histogram`` (cumulative counts) in Prometheus text, scaled by ``unit``."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
    for bound, count in zip(histogram.bounds, histogram.cumulative, strict=True):
        lines.append(f'{name}_bucket{{le="{bound / unit:g}"}} {count}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {histogram.count}')
    lines.append(f"{name}_sum {histogram.total / unit:g}")
    lines.append(f"{name}_count {histogram.count}")
    return lines


def _labelled(name: str, counts: Counter[str]) -> list[str]:
    return [f'{name}{{outcome="{key}"}} {value}' for key, value in sorted(counts.items())]


HealthCheck = Callable[[], Awaitable[tuple[int, dict[str, Any]]]]
"""Returns the HTTP status and the JSON body of ``/health``."""
MetricsText = Callable[[], Awaitable[str]]


def service_health(status: ServiceStatus) -> HealthCheck:
    """``/health`` of one SIP endpoint: 503 while it drains."""

    async def check() -> tuple[int, dict[str, Any]]:
        draining = status.draining
        body = {"status": "draining" if draining else "ok",
                "calls_in_progress": status.active_calls, "draining": draining}
        return (503 if draining else 200), body

    return check


class HealthServer:
    """``/health`` (JSON) and ``/metrics`` (Prometheus text) on ``host:port`` (0: a free one)."""

    def __init__(self, host: str, port: int, health: HealthCheck, metrics: MetricsText):
        self.host = host
        self.port = port
        self._health = health
        self._metrics_text = metrics
        self._runner: web.AppRunner | None = None
        self._routes: list[tuple[str, str, Callable[[web.Request], Awaitable[web.Response]]]] = []

    def add_route(self, method: str, path: str,
                  handler: Callable[[web.Request], Awaitable[web.Response]]) -> None:
        """Another endpoint on the same port (e.g. ``POST /contacts``); before ``start``."""
        self._routes.append((method, path, handler))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._on_health)
        app.router.add_get("/metrics", self._on_metrics)
        for method, path, handler in self._routes:
            app.router.add_route(method, path, handler)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _on_health(self, request: web.Request) -> web.Response:
        status, body = await self._health()
        return web.Response(text=json.dumps(body), status=status,
                            content_type="application/json")

    async def _on_metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=(await self._metrics_text()).encode(),
                            headers={"Content-Type": PROMETHEUS_CONTENT_TYPE})
