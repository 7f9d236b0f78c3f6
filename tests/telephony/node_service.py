"""A real ``voicebot serve`` node (Kamailio, SIP media workers, speech engine) for the tests.

Started as a user would, in a child process on 127.0.0.1 ports of its own, its clock
frozen to an open Monday morning; stopped with SIGTERM (a drain) and killed if it does not
go. ``ledger_row`` reads back what the node billed with ``voicebot ledger export``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from baresip_phone import free_port, free_port_block
from processes import stop_process

from bot.settings import PROJECT_ROOT, Settings
from telephony_adapter.node import PDEATHSIG

VOICEBOT = PROJECT_ROOT / ".venv" / "bin" / "voicebot"
OPEN_MONDAY = "2026-11-23T10:00:00+01:00"
START_S = 300


@dataclass
class NodeService:
    process: subprocess.Popen
    sip_port: int
    http_port: int
    advisor_port: int
    closures: Path
    env: dict[str, str]
    log: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    @property
    def uri(self) -> str:
        return f"sip:3230@127.0.0.1:{self.sip_port}"

    @property
    def advisor_uri(self) -> str:
        return f"sip:conseiller@127.0.0.1:{self.advisor_port}"

    def health(self) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health",
                                        timeout=5) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                    timeout=5) as reply:
            return reply.read().decode()

    async def wait_health(self, predicate, timeout_s: float, what: str) -> dict:
        """Poll /health (another process's state) until ``predicate(body)`` holds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            _, body = await asyncio.to_thread(self.health)
            if predicate(body):
                return body
            if loop.time() > deadline:
                raise AssertionError(f"{what} not seen within {timeout_s:.0f} s: {body}\n"
                                     + "\n".join(self.log[-30:]))
            await asyncio.sleep(0.5)  # polling another process

    def ledger_rows(self) -> dict[str, dict[str, str]]:
        month = datetime.now(ZoneInfo("Europe/Paris")).strftime("%Y-%m")
        out = subprocess.run([str(VOICEBOT), "ledger", "export", "--month", month],
                             env=self.env, capture_output=True, text=True, check=True).stdout
        return {row["call_id"]: row for row in csv.DictReader(io.StringIO(out))}

    async def ledger_row(self, call_id: str, timeout_s: float = 20.0) -> dict[str, str]:
        """The call's row, once the node has written it (when the call ends)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            rows = await asyncio.to_thread(self.ledger_rows)
            if call_id in rows:
                return rows[call_id]
            if loop.time() > deadline:
                raise AssertionError(f"no ledger row for {call_id}; node log:\n"
                                     + "\n".join(self.log[-40:]))
            await asyncio.sleep(0.5)  # polling a database another process writes

    def stop(self, timeout_s: float = 60.0) -> int:
        return stop_process(self.process, timeout_s)


def start_node(settings: Settings, workdir: Path, *, workers: int = 3, max_calls: int = 6,
               extra_calls: int = 0, extra_env: dict[str, str] | None = None,
               advisor_port: int | None = None, wait: bool = True) -> NodeService:
    """Start a node on fresh ports (Kamailio's, then one per worker and the rescue worker's
    right after it)."""
    closures = workdir / "fermetures.txt"
    closures.write_text("# jours de fermeture exceptionnelle\n", encoding="utf-8")
    paths = settings.paths
    sip_port = free_port_block(workers + 2)
    http_port = free_port()
    rtp = free_port_block(40 * (workers + 1), start=40000, stop=60000)
    advisor_port = advisor_port or free_port()
    env = dict(
        os.environ,
        VOICEBOT_PATHS_STATE_DIR=str(paths.state_dir),
        VOICEBOT_PATHS_GENERATED_DIR=str(paths.generated_dir),
        VOICEBOT_TELEPHONY_SIP_PORT=str(sip_port),
        VOICEBOT_TELEPHONY_HTTP_PORT=str(http_port),
        VOICEBOT_TELEPHONY_RTP_PORT_MIN=str(rtp),
        VOICEBOT_TELEPHONY_RTP_PORT_MAX=str(rtp + 40 * (workers + 1) - 1),
        VOICEBOT_TELEPHONY_ADVISOR_URI=f"sip:conseiller@127.0.0.1:{advisor_port}",
        VOICEBOT_TELEPHONY_NOW=OPEN_MONDAY,
        VOICEBOT_TELEPHONY_CLOSURES_FILE=str(closures),
        VOICEBOT_TELEPHONY_MAX_CALLS=str(max_calls),
        VOICEBOT_TELEPHONY_SIP_EXTRA_CALLS=str(extra_calls),
        VOICEBOT_NODE_WORKERS=str(workers),
        VOICEBOT_CONSOLE_WITH_SERVE="false",  # several nodes at once: no clash on 8443
        **(extra_env or {}),
    )
    # A node outlives nothing: if pytest is killed (a CI timeout), the node gets SIGTERM.
    process = subprocess.Popen([*PDEATHSIG, str(VOICEBOT), "serve", "--grace", "20"], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    node = NodeService(process, sip_port, http_port, advisor_port, closures, env)

    def read_log() -> None:
        for line in process.stdout:
            node.log.append(line.rstrip())
            if "En service" in line:
                node.ready.set()

    threading.Thread(target=read_log, daemon=True).start()
    if wait and not node.ready.wait(START_S):
        node.stop(10)
        raise AssertionError("voicebot serve did not start:\n" + "\n".join(node.log[-40:]))
    return node


@contextmanager
def running_node(settings: Settings, workdir: Path, **options) -> Iterator[NodeService]:
    """``start_node`` for a fixture: stopped (drained) at the end, its log printed on
    request (``SERVICE_LOG=1``)."""
    node = start_node(settings, workdir, **options)
    try:
        yield node
    finally:
        if os.environ.get("SERVICE_LOG"):
            print("\n".join(node.log))
        node.stop(30)
