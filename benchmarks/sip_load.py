"""Load-test plumbing on 127.0.0.1: one allo-caf node and headless baresip phones.

Used by ``benchmarks/calls.py``. Nothing here listens on anything but 127.0.0.1.

- ``Node``: one ``voicebot serve`` (whatever it runs inside: today one process, later a
  supervisor with Kamailio, SIP media workers and a speech engine, all its descendants),
  on one SIP port, with ``/health`` and ``/metrics`` on one HTTP port. Its stdout and
  stderr are read line by line in a thread, written to a log file and stamped with
  ``time.monotonic()`` as they arrive: "En service" says it is ready, and each per-turn
  INFO line gets the instant its reply was ready. Stopped with SIGTERM (it drains), killed
  if it does not exit.
- ``caller`` and ``advisor``: the tests' baresip phone (``tests/telephony/baresip_phone.py``,
  the one baresip client of the project). A caller plays one WAV, its script, and hangs up
  when the file ends; it records what it sends and what it receives (``phone_timing.py``
  reads both). The advisor answers every transfer at once and hangs up after a few seconds.
- ``/proc`` helpers: the node's process tree, its memory (PSS and RSS) and CPU time.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "telephony"))
from baresip_phone import Baresip, free_port, free_port_block  # noqa: E402

__all__ = ["Baresip", "free_port", "free_port_block"]  # re-exported for calls.py

READY_LINE = "En service"
TURN_LINE = re.compile(
    r"INFO bot\.pipeline: (?P<call>.+?): (?P<action>\S+) (?P<motif>\S+) "
    r"\((?P<conf>[0-9.]+)\) asr (?P<asr>\d+) ms, tts (?P<tts>\d+) ms, "
    r"response (?P<response>\d+) ms\s*$")
"""The one INFO line the speech engine logs per answered turn (whatever prefixes it)."""
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CALLER_CONFIG = "jitter_buffer_delay\t0-0\n"
"""No jitter buffer in the callers: a packet is decoded (and dumped) as it arrives."""
ADVISOR_CONFIG = "call_max_calls\t\t200\n"
"""baresip refuses a 5th simultaneous call by default; the advisor takes every transfer."""


# --- /proc --------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/PID/stat`` after the command name (which may hold spaces and parentheses)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants, as ``/proc`` says now."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        if _stat_fields(current) is None:
            continue
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def process_name(pid: int) -> str:
    """The command line, shortened (``python … voicebot serve``, ``kamailio``…)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [os.path.basename(a.decode(errors="replace")) for a in argv if a][:4]
    return " ".join(words)[:80] or "?"


def start_ticks(pid: int) -> int:
    """When the process started (clock ticks since boot): tells a pid reused from its
    first owner."""
    fields = _stat_fields(pid)
    return int(fields[19]) if fields else -1


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB. PSS splits shared pages between the processes that
    share them, so the PSS of a process tree adds up to what it really takes."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process, all its threads (not its children: they are
    counted as processes of their own)."""
    fields = _stat_fields(pid)
    if not fields:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return total - idle, total


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


def udp_sockets_on(port: int) -> int:
    """UDP sockets bound to 127.0.0.1:``port`` or any address on it, machine-wide. More
    than the node's own means another process shares the SIP port (``SO_REUSEADDR``) and
    may be receiving the benchmark's INVITEs."""
    wanted = {f"0100007F:{port:04X}", f"00000000:{port:04X}"}
    try:
        rows = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return 0
    return sum(1 for row in rows if row.split()[1] in wanted)


def mem_available_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024 // 10**6
    return 0


# --- the node -------------------------------------------------------------------------------
@dataclass
class Node:
    """One allo-caf node on 127.0.0.1: ``voicebot serve`` and whatever it starts."""

    voicebot: Path
    sip_port: int
    http_port: int
    env: dict[str, str]
    log_path: Path
    grace_s: float = 10.0
    workers: int | None = None
    """``--workers N``, passed only when given (the single-process serve has no such flag)."""
    process: subprocess.Popen | None = None
    lines: list[tuple[float, str]] = field(default_factory=list)
    """Every line of its output so far, with the ``time.monotonic()`` it was read at."""

    def __post_init__(self) -> None:
        self._ready = threading.Event()
        self.in_service = False
        self._reader: threading.Thread | None = None

    @property
    def uri(self) -> str:
        return f"sip:3230@127.0.0.1:{self.sip_port}"

    @property
    def command(self) -> list[str]:
        argv = [str(self.voicebot), "serve", "--sip-port", str(self.sip_port),
                "--http-port", str(self.http_port), "--grace", f"{self.grace_s:g}"]
        if self.workers is not None:
            argv += ["--workers", str(self.workers)]
        return argv

    def start(self) -> None:
        env = dict(self.env, VOICEBOT_TELEPHONY_SIP_HOST="127.0.0.1",
                   VOICEBOT_TELEPHONY_HTTP_HOST="127.0.0.1", PYTHONUNBUFFERED="1",
                   VOICEBOT_CONSOLE_WITH_SERVE="false")  # nodes side by side: no 8443 clash
        self.process = subprocess.Popen(self.command, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        self._reader = threading.Thread(target=self._read, name="node-log", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with self.log_path.open("w", encoding="utf-8") as log:
            for raw in self.process.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.lines.append((time.monotonic(), line))
                log.write(line + "\n")
                log.flush()
                if READY_LINE in line:
                    self.in_service = True
                    self._ready.set()
        self._ready.set()  # the output closed: wait_ready sees the exit

    def wait_ready(self, timeout_s: float) -> None:
        ready = self._ready.wait(timeout_s)
        if not self.in_service or not self.alive:  # its output closed: it is exiting
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        if not self.alive:
            raise RuntimeError(f"the node exited ({self.process.poll()}) before it was in "
                               f"service:\n{self.tail()}")
        if not ready or not self.in_service:
            raise RuntimeError(f"the node is not in service after {timeout_s:.0f} s:\n"
                               + self.tail())

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def tail(self, count: int = 30) -> str:
        return "\n".join(line for _, line in self.lines[-count:])

    def turns(self, since: int = 0) -> list[dict]:
        """The per-turn INFO lines from line ``since`` on, parsed and stamped."""
        out = []
        for seen_at, line in self.lines[since:]:
            m = TURN_LINE.search(line)
            if m:
                out.append({"call_id": m["call"], "action": m["action"], "motif": m["motif"],
                            "confidence": float(m["conf"]), "asr_ms": int(m["asr"]),
                            "tts_ms": int(m["tts"]), "response_ms": int(m["response"]),
                            "seen_at": seen_at})
        return out

    def problems(self, since: int = 0) -> list[str]:
        """WARNING, ERROR and CRITICAL lines, and tracebacks' last lines."""
        return [line for _, line in self.lines[since:]
                if any(f" {level} " in line for level in ("WARNING", "ERROR", "CRITICAL"))
                or line.startswith(("Traceback", "Fatal Python error"))]

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}{path}",
                                        timeout=5) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            return 0, f"{type(exc).__name__}: {exc}"

    def ledger_rows(self, months: list[str]) -> dict[str, list[dict[str, str]]]:
        """``voicebot ledger export --month M`` for each month, rows grouped by call id."""
        rows: dict[str, list[dict[str, str]]] = {}
        for month in months:
            done = subprocess.run([str(self.voicebot), "ledger", "export", "--month", month],
                                  env=self.env, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"ledger export failed: {done.stderr[-2000:]}")
            for row in csv.DictReader(io.StringIO(done.stdout)):
                rows.setdefault(row["call_id"], []).append(row)
        return rows

    def transcript(self, call_id: str) -> str | None:
        """``voicebot ledger transcript``: what the engine heard and said (stored encrypted)."""
        done = subprocess.run([str(self.voicebot), "ledger", "transcript", call_id],
                              env=self.env, capture_output=True, text=True)
        return done.stdout if done.returncode == 0 else None

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (drain), then SIGKILL to the whole process group if it has not exited."""
        process = self.process
        if process is None:
            return None
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout_s if timeout_s is not None else self.grace_s + 30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self._reader is not None:
            self._reader.join(5)
        return process.returncode


# --- phones -------------------------------------------------------------------------------
def caller(workdir: Path, name: str, script: Path) -> Baresip:
    """A recording caller; RTP kept away from the node's range and the ephemeral ports."""
    return Baresip(workdir, name, script, rtp_ports="10000-20000", record=True,
                   extra_config=CALLER_CONFIG)


def advisor(workdir: Path, port: int, script: Path) -> Baresip:
    """The advisors' line: answers every transfer at once, hangs up when ``script`` ends."""
    return Baresip(workdir, "conseiller", script, answermode="auto", sip_port=port,
                   rtp_ports="10000-20000", record=False, extra_config=ADVISOR_CONFIG)


async def start_phone(make, attempts: int = 3) -> Baresip:
    """Start a phone built by ``make(attempt)``; a port taken meanwhile: try new ones."""
    for attempt in range(attempts):
        phone = make(attempt)
        try:
            await phone.start()
            return phone
        except RuntimeError:
            phone.kill()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def cpu_of(phone: Baresip) -> float:
    process = phone.process
    return cpu_seconds(process.pid) if process is not None and process.returncode is None \
        else 0.0
