"""Load-test plumbing on 127.0.0.1: ``voicebot serve`` processes and headless baresip callers.

Used by ``benchmarks/calls.py``. Nothing here listens on anything but 127.0.0.1.

- ``ServiceProcess``: one ``voicebot serve`` with its own SIP, HTTP and RTP ports, its log
  in a file (the per-turn INFO lines are parsed from it), its RSS and CPU time read from
  ``/proc``; stopped with SIGTERM (the service drains), killed if it does not exit.
- ``load_caller``: the tests' baresip phone (``tests/telephony/baresip_phone.py``, the one
  baresip client of the project). It plays one WAV through ``aufile`` and hangs up when the
  file ends, so the file is the caller's script: silence through the greeting, a question,
  silence through the answer, maybe another question, then the hang-up. What it hears is
  not recorded: the service's own log says what it answered and when.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "telephony"))
from baresip_phone import Baresip, free_port  # noqa: E402

__all__ = ["Baresip", "free_port"]  # re-exported for calls.py

READY_LINE = "En service"
TURN_LINE = re.compile(
    r"^(?P<time>\S+ \S+) INFO bot\.pipeline: (?P<call>.+?): (?P<action>\S+) (?P<motif>\S+) "
    r"\((?P<conf>[0-9.]+)\) asr (?P<asr>\d+) ms, tts (?P<tts>\d+) ms, "
    r"response (?P<response>\d+) ms\s*$")
"""The one INFO line ``bot.pipeline`` logs per answered turn."""
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port_block(count: int, start: int = 21000, stop: int = 32000) -> int:
    """The first port of ``count`` consecutive ports free for UDP and TCP on 127.0.0.1
    (several services on consecutive SIP ports, as a dispatcher list would name them)."""
    for base in range(start, stop - count):
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                    s = socket.socket(socket.AF_INET, kind)
                    sockets.append(s)
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


# --- /proc ------------------------------------------------------------------------------
def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``voicebot`` is a Python process; it forks no workers,
    but count them if it ever does)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def rss_kb(pid: int) -> int:
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pss_kb(pid: int) -> int:
    """Proportional set size: shared library pages split between the processes sharing them,
    so the services' PSS add up to what they really take (RSS counts shared pages twice)."""
    total = 0
    for p in process_tree(pid):
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads), in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
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


# --- the service --------------------------------------------------------------------------
@dataclass
class ServiceProcess:
    """One ``voicebot serve`` on 127.0.0.1, logging to ``log_path``."""

    voicebot: Path
    index: int
    sip_port: int
    http_port: int
    rtp_port_min: int
    rtp_port_max: int
    env: dict[str, str]
    log_path: Path
    grace_s: float = 10.0
    process: subprocess.Popen | None = None
    peak_rss_kb: int = 0
    peak_pss_kb: int = 0

    @property
    def uri(self) -> str:
        return f"sip:3230@127.0.0.1:{self.sip_port}"

    def start(self) -> None:
        env = dict(self.env,
                   VOICEBOT_TELEPHONY_SIP_HOST="127.0.0.1",
                   VOICEBOT_TELEPHONY_HTTP_HOST="127.0.0.1",
                   VOICEBOT_TELEPHONY_SIP_PORT=str(self.sip_port),
                   VOICEBOT_TELEPHONY_HTTP_PORT=str(self.http_port),
                   VOICEBOT_TELEPHONY_RTP_PORT_MIN=str(self.rtp_port_min),
                   VOICEBOT_TELEPHONY_RTP_PORT_MAX=str(self.rtp_port_max))
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [str(self.voicebot), "serve", "--grace", f"{self.grace_s:g}"], env=env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"voicebot serve #{self.index} exited "
                                   f"({self.process.returncode}):\n{self.tail()}")
            if READY_LINE in self.log_text():
                return
            time.sleep(0.5)  # polling a log another process writes
        raise RuntimeError(f"voicebot serve #{self.index} not ready after {timeout_s:.0f} s:\n"
                           + self.tail())

    def log_text(self, offset: int = 0) -> str:
        try:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def sample_rss(self) -> int:
        rss = rss_kb(self.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_pss_kb = max(self.peak_pss_kb, pss_kb(self.pid))
        return rss

    def metrics(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics",
                                    timeout=5) as reply:
            return reply.read().decode()

    def stop(self, timeout_s: float | None = None) -> int | None:
        """SIGTERM (drain), then SIGKILL if it has not exited in time; the exit status."""
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
                    process.kill()
                process.wait()
        return process.returncode


def turn_lines(text: str) -> list[dict]:
    """The per-turn INFO lines of a service log, parsed."""
    turns = []
    for line in text.splitlines():
        m = TURN_LINE.match(line)
        if m:
            turns.append({"call_id": m["call"], "action": m["action"], "motif": m["motif"],
                          "confidence": float(m["conf"]), "asr_ms": int(m["asr"]),
                          "tts_ms": int(m["tts"]),
                          "response_ms": int(m["response"]), "time": m["time"]})
    return turns


def problem_lines(text: str) -> list[str]:
    """WARNING, ERROR and CRITICAL lines and tracebacks' last lines, for the report."""
    out = []
    for line in text.splitlines():
        if " WARNING " in line or " ERROR " in line or " CRITICAL " in line:
            out.append(line)
    return out


def load_caller(workdir: Path, name: str, source: Path, sip_port: int, ctrl_port: int) -> Baresip:
    """A load-test caller: no recording, RTP kept away from the services' ranges and from the
    kernel's ephemeral ports."""
    return Baresip(workdir, name, source, sip_port=sip_port, ctrl_port=ctrl_port,
                   rtp_ports="10000-20000", record=False)
