"""``voicebot serve``: one node, supervised. The speech engine, the SIP media workers and
Kamailio in front of them, each restarted if it dies; ``/health`` and ``/metrics`` for
the whole node; the ledger rows of calls the engine could not finish; a drain on SIGTERM.

```
 operator ──SIP──▶ Kamailio (telephony.sip_port) ──▶ worker-0 … worker-N (sip_port+1…)
                                                         │ one media stream per call
                                                         ▼
                                              speech engine (node.engine_port)
 supervisor (this): starts, watches, restarts them all; /health, /metrics; rescued rows
```

Children run under ``setpriv --pdeathsig TERM``: if the supervisor itself is killed, they
stop too instead of holding the node's ports. They are in their own session, so a Ctrl-C
on the terminal reaches the supervisor only, which then drains them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from bot.errors import VoicebotError
from bot.settings import Settings
from telephony_adapter.daily import DailyJob, DailyJobs, parse_time_of_day
from telephony_adapter.http import HealthServer
from telephony_adapter.node_plan import NodePlan
from telephony_adapter.status_pipe import read_status

log = logging.getLogger(__name__)

PDEATHSIG = ("setpriv", "--pdeathsig", "TERM", "--")
"""Children get SIGTERM if the supervisor dies, whatever killed it (util-linux, always there)."""
STATUS_FD = "{status_fd}"
"""Placeholder in a child's command line for the number of its status pipe's write end."""
WORKER_START_S = 60.0
STOP_SIGNAL_WAIT_S = 30.0
"""After the grace period, how long a child may take to exit on SIGTERM before SIGKILL."""
RESTART_RESET_S = 60.0
"""A child that ran this long before dying is restarted at once: it was not crash-looping."""
PROBE_TIMEOUT_S = 1.0


class NodeStartError(VoicebotError):
    """A process of the node could not start; the message says which and why."""


@dataclass
class Child:
    """One supervised process and what it last said on its status pipe."""

    name: str
    argv: list[str]
    env: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    status: dict[str, Any] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    restarts: int = 0
    started_at: float = 0.0
    reader: asyncio.Task | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    async def start(self, on_message: Callable[[Child, dict], None]) -> None:
        read_fd, write_fd = os.pipe()
        argv = [str(write_fd) if arg == STATUS_FD else arg for arg in self.argv]
        self.ready = asyncio.Event()
        self.status = {}
        try:
            self.process = await asyncio.create_subprocess_exec(
                *PDEATHSIG, *argv, env=self.env,
                stdin=asyncio.subprocess.DEVNULL, pass_fds=(write_fd,),
                start_new_session=True)
        finally:
            os.close(write_fd)
        self.started_at = time.monotonic()
        self.reader = asyncio.create_task(self._read(read_fd, on_message),
                                          name=f"status {self.name}")

    async def _read(self, fd: int, on_message: Callable[[Child, dict], None]) -> None:
        async for message in read_status(fd):
            if message.get("type") == "ready":
                self.ready.set()
            try:
                on_message(self, message)
            except Exception:
                log.exception("%s: status message not handled", self.name)

    def signal(self, signum: int) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signum)  # type: ignore[union-attr]

    async def stop(self, timeout_s: float) -> None:
        """SIGTERM (the child drains), then SIGKILL after ``timeout_s``."""
        if not self.alive:
            return
        self.signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), timeout_s)  # type: ignore[union-attr]
        except asyncio.TimeoutError:
            log.warning("%s did not stop in %.0f s: killed", self.name, timeout_s)
            self.signal(signal.SIGKILL)
            await self.process.wait()  # type: ignore[union-attr]


class Node:
    """Runs one node until ``stop`` is set, then drains it."""

    def __init__(self, settings: Settings, plan: NodePlan, grace_s: float,
                 child_env: dict[str, str], config: Path | None = None):
        self.settings = settings
        self.plan = plan
        self.grace_s = grace_s
        self.draining = False
        self.started = False
        self._base = [sys.executable, "-m", "bot.cli.main"]
        if config is not None:
            self._base += ["--config", str(config)]
        self.engine = Child("engine", [*self._base, "engine", "--port", str(plan.engine_port),
                                       "--status-fd", STATUS_FD, "--grace", f"{grace_s:g}"],
                            child_env)
        self.workers = [
            Child(w.name, [*self._base, "sip-worker", "--index", str(w.index), "--workers",
                           str(len(plan.workers)), "--engine-port", str(plan.engine_port),
                           "--status-fd", STATUS_FD, "--grace", f"{grace_s:g}"], child_env)
            for w in plan.all_workers]
        self.console = Child("console", [*self._base, "console"], child_env) \
            if settings.console.with_serve else None
        """The HTTPS console (console.with_serve), supervised like the others."""
        self.kamailio = None
        self._plans = {w.name: w for w in plan.all_workers}
        self._applied: dict[str, str] = {}
        """The state each worker has in Kamailio (all start active)."""
        self._steering: dict[str, asyncio.Task] = {}
        self.ledger = None
        self.contact_feed = None
        """Advisor contacts: drop folder and POST /contacts (ledger/contact_feed.py)."""
        self.kamailio_restarts = 0
        self._watchers: list[asyncio.Task] = []
        self._rows: set[asyncio.Task] = set()
        self._session: aiohttp.ClientSession | None = None
        self.health = HealthServer(settings.telephony.http_host, settings.telephony.http_port,
                                   self._health, self._metrics)

    # --- start ------------------------------------------------------------------------------
    async def start(self) -> None:
        from ledger import Ledger
        from ledger.contact_feed import ContactFeed

        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(PROBE_TIMEOUT_S))
        self.ledger = await asyncio.to_thread(Ledger.open, self.settings)
        self.contact_feed = ContactFeed.for_node(self.settings, self.ledger, self.health)
        await self.health.start()
        self.contact_feed.start()
        await self._start_child(self.engine, self.settings.node.startup_timeout_s,
                                "le moteur vocal (modèles de reconnaissance et de dialogue)")
        await asyncio.gather(*(self._start_child(w, WORKER_START_S, f"le processus SIP {w.name}")
                               for w in self.workers))
        self.kamailio = self._make_kamailio()
        await self.kamailio.start()
        self._steer_all()
        self._watchers = [asyncio.create_task(self._watch(c), name=f"watch {c.name}")
                          for c in (self.engine, *self.workers)]
        self._watchers.append(asyncio.create_task(self._watch_kamailio(), name="watch kamailio"))
        self._watchers.append(asyncio.create_task(self._daily_jobs().forever(), name="daily"))
        if self.console is not None:
            await self.console.start(self._on_message)
            self._watchers.append(asyncio.create_task(self._watch(self.console),
                                                      name="watch console"))
        self.started = True

    def _daily_jobs(self) -> DailyJobs:
        from console.maintenance import daily_job as audit_daily_job
        from ledger.retention import purge

        recordings_dir = (self.settings.ledger.recordings_dir
                          or self.settings.paths.state_dir / "recordings")
        jobs = [DailyJob("purge",
                         lambda today: purge(self.ledger, today, recordings_dir).summary()),
                DailyJob("journal des accès",
                         lambda today: audit_daily_job(self.settings, self.ledger.engine,
                                                         today))]
        return DailyJobs(jobs, parse_time_of_day(self.settings.node.daily_jobs_at),
                         ZoneInfo(self.settings.ledger.timezone))

    async def _start_child(self, child: Child, timeout_s: float, what: str) -> None:
        await child.start(self._on_message)
        ready = asyncio.create_task(child.ready.wait())
        exited = asyncio.create_task(child.process.wait())  # type: ignore[union-attr]
        done, _ = await asyncio.wait({ready, exited}, timeout=timeout_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        exited.cancel()
        if not child.ready.is_set():
            code = child.process.returncode  # type: ignore[union-attr]
            await child.stop(5.0)
            why = f"code de sortie {code}" if code is not None else \
                f"pas prêt après {timeout_s:.0f} s"
            raise NodeStartError(f"Impossible de démarrer {what} ({why}) ; voir les messages "
                                 "ci-dessus.")

    def _make_kamailio(self):
        from telephony_adapter.kamailio import Destination, DispatcherConfig, Kamailio

        t, n = self.settings.telephony, self.settings.node
        config = DispatcherConfig(
            listen_host=t.sip_host, listen_port=self.plan.sip_port,
            transports=tuple(t.sip_transports),
            destinations=tuple(Destination(w.uri) for w in self.plan.workers),
            rescue=(Destination(self.plan.rescue.uri),),
            runtime_dir=self.settings.paths.state_dir / "run" / f"kamailio-{self.plan.sip_port}",
            probe_interval_s=n.probe_interval_s, edge=n.edge, name="node")
        return Kamailio(config, command_prefix=PDEATHSIG)

    # --- supervision ------------------------------------------------------------------------
    def _steer_all(self) -> None:
        for worker in self.workers:
            self._steer(worker)

    async def _watch(self, child: Child) -> None:
        failures = 0
        while True:
            code = await child.process.wait()  # type: ignore[union-attr]
            if self.draining:
                return
            child.status = {}
            if child.name in self._plans:
                self._steer(child)  # no call waits on a dead worker's timeout
            ran_s = time.monotonic() - child.started_at
            failures = 0 if ran_s > RESTART_RESET_S else failures + 1
            delay = min(2.0 ** max(0, failures - 1), self.settings.node.restart_delay_max_s)
            log.error("%s (pid %s) exited with %s after %.0f s; restarting in %.0f s",
                      child.name, child.pid, code, ran_s, delay if failures else 0)
            if failures:
                await asyncio.sleep(delay)  # restart back-off, not a synchronisation
            if self.draining:
                return
            child.restarts += 1
            try:
                await child.start(self._on_message)
            except OSError:
                log.exception("%s could not be restarted", child.name)

    async def _watch_kamailio(self) -> None:
        while True:
            await self.kamailio.wait()
            if self.draining:
                return
            log.error("kamailio exited; restarting it")
            self.kamailio_restarts += 1
            try:
                await self.kamailio.start()
                self._applied.clear()  # a new Kamailio starts with every worker active
                self._steer_all()
            except VoicebotError as exc:
                log.error("kamailio could not be restarted: %s", exc)
                await asyncio.sleep(self.settings.node.restart_delay_max_s)  # back-off

    def _on_message(self, child: Child, message: dict) -> None:
        kind = message.get("type")
        if kind == "status":
            child.status = message
            self._steer(child)
        elif kind == "rescued_call":
            task = asyncio.create_task(self._record_rescued(message))
            self._rows.add(task)
            task.add_done_callback(self._rows.discard)

    # --- which workers Kamailio may send calls to -----------------------------------------
    def _wanted_state(self, child: Child) -> str:
        """A worker that cannot take a call (dead, no engine, full, draining) is disabled in
        Kamailio, so that no INVITE is refused by it: refusals cost pjsua sockets, and a
        dead one costs the caller a 1.5 s timeout. The rescue worker stays up."""
        plan = self._plans[child.name]
        status = child.status
        if self.draining or not child.alive or status.get("draining"):
            return "disabled"
        if plan.rescue:
            return "active"
        if not status.get("engine_up") \
                or int(status.get("calls", 0)) >= plan.telephony.max_calls:
            return "disabled"
        return "active"

    def _steer(self, child: Child) -> None:
        if self.kamailio is None or child.name in self._steering:
            return
        task = asyncio.create_task(self._apply_state(child), name=f"steer {child.name}")
        self._steering[child.name] = task
        task.add_done_callback(lambda _: self._steering.pop(child.name, None))

    async def _apply_state(self, child: Child) -> None:
        """Until Kamailio has the state the worker's last status asks for (one at a time)."""
        uri = self._plans[child.name].uri
        while self.kamailio.running and \
                (wanted := self._wanted_state(child)) != self._applied.get(child.name):
            try:
                await self.kamailio.set_state(uri, wanted)
            except VoicebotError as exc:
                log.warning("kamailio: %s not set %s: %s", uri, wanted, exc)
                return
            self._applied[child.name] = wanted

    async def _record_rescued(self, message: dict) -> None:
        """A call the engine could not finish: the worker apologised and transferred."""
        from ledger import Interaction, Outcome

        try:
            interaction = Interaction(
                call_id=str(message["call_id"]), caller_number=message.get("caller") or None,
                started_at=datetime.fromisoformat(message["started_at"]),
                ended_at=datetime.fromisoformat(message["ended_at"]),
                motif=str(message.get("motif") or "conseiller"), message_ms=0, listened_ms=0,
                handoff=bool(message.get("handoff")), outcome=Outcome.ERROR)
        except (KeyError, ValueError, TypeError) as exc:
            log.error("rescued call report unreadable (%s): no ledger row", exc)
            return
        result = await self.ledger.arecord_interaction(interaction)
        log.info("call %s rescued by its worker (%s): ledger %s", interaction.call_id,
                 message.get("reason"), result.value)

    # --- stop -------------------------------------------------------------------------------
    async def drain(self) -> None:
        """New calls refused at once; calls in progress finish (up to the grace period)."""
        self.draining = True
        if self.kamailio is not None and self.kamailio.running:
            self._steer_all()
            if self._steering:
                await asyncio.wait(list(self._steering.values()), timeout=STOP_SIGNAL_WAIT_S)
        for worker in self.workers:
            worker.signal(signal.SIGTERM)
        await asyncio.gather(*(w.stop(self.grace_s + STOP_SIGNAL_WAIT_S) for w in self.workers))
        await self.engine.stop(self.grace_s + STOP_SIGNAL_WAIT_S)
        if self.console is not None:
            await self.console.stop(STOP_SIGNAL_WAIT_S)
        for task in self._watchers:
            task.cancel()
        if self.kamailio is not None:
            await self.kamailio.stop()
        if self._rows:
            await asyncio.wait(self._rows, timeout=STOP_SIGNAL_WAIT_S)
        await self.health.stop()
        if self._session is not None:
            await self._session.close()
        if self.contact_feed is not None:
            await self.contact_feed.stop()
        if self.ledger is not None:
            await asyncio.to_thread(self.ledger.replay_spool)
            self.ledger.close()

    # --- /health and /metrics ---------------------------------------------------------------
    @property
    def active_calls(self) -> int:
        return sum(int(w.status.get("calls", 0)) for w in self.workers if w.alive)

    async def _engine(self, path: str) -> tuple[int, str]:
        if self._session is None or not self.engine.alive:
            return 0, ""
        try:
            async with self._session.get(f"http://{self.plan.engine_host}:"
                                         f"{self.plan.engine_port}{path}") as reply:
                return reply.status, await reply.text()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
            return 0, ""

    async def _health(self) -> tuple[int, dict[str, Any]]:
        import json

        code, text = await self._engine("/status")
        engine = json.loads(text) if code == 200 else {}
        engine_up = code == 200
        live_calls = engine.pop("live_calls", [])
        workers = [{"name": c.name, "pid": c.pid, "alive": c.alive,
                    "sip_port": w.telephony.sip_port, "calls": int(c.status.get("calls", 0)),
                    "engine_linked": bool(c.status.get("engine_up")), "restarts": c.restarts}
                   for c, w in zip(self.workers, self.plan.all_workers, strict=True)]
        alive = sum(1 for w in workers if w["alive"])
        kamailio_up = self.kamailio is not None and self.kamailio.running
        if self.draining:
            state = "draining"
        elif not self.started:
            state = "starting"
        elif engine_up and kamailio_up and alive and \
                all(w["engine_linked"] for w in workers if w["alive"]):
            state = "ok"
        else:
            state = "degraded"
        body = {
            "status": state, "calls_in_progress": self.active_calls, "draining": self.draining,
            "live_calls": live_calls,
            "capacity": self.plan.capacity,
            "engine": {"up": engine_up, "pid": self.engine.pid, "restarts": self.engine.restarts,
                       **{k: v for k, v in engine.items() if k != "ready"}},
            "workers_alive": alive, "workers": workers,
            "kamailio": {"up": kamailio_up, "sip_port": self.plan.sip_port,
                         "pid": self.kamailio.pid if self.kamailio else None,
                         "restarts": self.kamailio_restarts},
        }
        return (200 if state == "ok" else 503), body

    async def _metrics(self) -> str:
        _, engine_text = await self._engine("/metrics")
        engine_up = bool(engine_text)
        lines = [
            "# HELP allo_caf_calls_in_progress Calls currently up on this node.",
            "# TYPE allo_caf_calls_in_progress gauge",
            f"allo_caf_calls_in_progress {self.active_calls}",
            "# HELP allo_caf_draining 1 while the node refuses new calls before stopping.",
            "# TYPE allo_caf_draining gauge",
            f"allo_caf_draining {int(self.draining)}",
            "# HELP allo_caf_engine_up 1 while the speech engine answers.",
            "# TYPE allo_caf_engine_up gauge",
            f"allo_caf_engine_up {int(engine_up)}",
            "# HELP allo_caf_workers_alive SIP media worker processes running.",
            "# TYPE allo_caf_workers_alive gauge",
            f"allo_caf_workers_alive {sum(1 for w in self.workers if w.alive)}",
            "# HELP allo_caf_worker_calls Calls held by each SIP media worker.",
            "# TYPE allo_caf_worker_calls gauge",
        ]
        lines += [f'allo_caf_worker_calls{{worker="{w.name}"}} {int(w.status.get("calls", 0))}'
                  for w in self.workers]
        lines += ["# HELP allo_caf_process_restarts_total Restarts of the node's processes.",
                  "# TYPE allo_caf_process_restarts_total counter"]
        lines += [f'allo_caf_process_restarts_total{{process="{c.name}"}} {c.restarts}'
                  for c in (self.engine, *self.workers)]
        lines.append(f'allo_caf_process_restarts_total{{process="kamailio"}} '
                     f"{self.kamailio_restarts}")
        return "\n".join(lines) + "\n" + engine_text
