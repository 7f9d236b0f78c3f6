"""Kamailio as the SIP dispatcher: write its files, run it in the foreground, watch it, steer it.

A node's single SIP address (in front of its media workers) and the front balancer (in front
of several nodes) are the same program with other destinations: a ``DispatcherConfig``
(``kamailio_config.py``) rendered by ``kamailio_render.py``. This module owns the process:
``start()`` returns once Kamailio answers on its RPC socket, ``stop()`` leaves no process
behind, ``wait()`` lets a supervisor notice a crash. Steering goes through the jsonrpcs
module over a Unix datagram socket in ``runtime_dir`` (JSON replies, no ``kamcmd`` output
to parse); ``kamcmd`` works for people on the ctl socket next to it (docs/kamailio.md).

Kamailio 5.6 is started as ``kamailio -f CFG -DD -E -Y RUNTIME_DIR -P PIDFILE -w RUNTIME_DIR``:
``-DD`` keeps the main process in the foreground (it forks its workers, ``-D`` alone would run
a single process on one socket), ``-E`` logs to stderr, ``-Y`` moves its runtime files out of
``/var/run``. No ``-u``: it runs as whoever starts it, root or not (ports above 1023 need no
privilege). It is started in its own session so that a stray worker can be found and killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import os
import re
import shutil
import signal
import socket
import uuid
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from telephony_adapter.kamailio_config import (
    LAST_RESORT_HEADER,
    RESCUE_SET_ID,
    SET_ID,
    BalancerOptions,
    Destination,
    DispatcherConfig,
    KamailioError,
    node_destination,
)
from telephony_adapter.kamailio_render import render_config, render_dispatcher_list

__all__ = [
    "LAST_RESORT_HEADER",
    "BalancerOptions",
    "Destination",
    "DispatcherConfig",
    "Kamailio",
    "KamailioError",
    "find_kamailio",
    "node_destination",
    "render_config",
    "render_dispatcher_list",
]

log = logging.getLogger(__name__)

STATES = {"active": "ap", "inactive": "ip", "disabled": "d"}
"""``set_state`` names → dispatcher.set_state codes. Active and inactive keep the probing
flag: an inactive destination comes back by itself once its keepalives succeed; a disabled
one is not probed and stays out until set active again."""
_FLAG_STATES = {"A": "active", "I": "inactive", "D": "disabled", "T": "trying"}
_SEARCH_PATH = (Path("/usr/sbin/kamailio"), Path("/usr/local/sbin/kamailio"))
_LOG_LINE = re.compile(r"^\s*\d+\(\d+\) (?P<level>[A-Z]+): (?P<text>.*)$")
_LOG_LEVELS = {
    "ALERT": logging.ERROR, "BUG": logging.ERROR, "CRITICAL": logging.ERROR,
    "ERROR": logging.ERROR, "WARNING": logging.WARNING, "NOTICE": logging.INFO,
    "INFO": logging.DEBUG, "DEBUG": logging.DEBUG,
}
_LOG_KEPT = 200
_STOP_GRACE_S = 5.0
_RPC_TIMEOUT_S = 2.0
_READY_POLL_S = 0.05
_RELOAD_TIMEOUT_S = 5.0


def find_kamailio() -> Path:
    """The kamailio binary: on PATH, or in /usr/sbin (often missing from a user's PATH)."""
    found = shutil.which("kamailio")
    if found:
        return Path(found)
    for candidate in _SEARCH_PATH:
        if os.access(candidate, os.X_OK):
            return candidate
    raise KamailioError(
        "Kamailio est introuvable (commande « kamailio »). Lancez scripts/setup.sh, "
        "ou installez-le : apt-get install kamailio."
    )


class Kamailio:
    """One Kamailio process running one ``DispatcherConfig``; used from one event loop."""

    def __init__(
        self, config: DispatcherConfig, *, binary: Path | None = None,
        ready_timeout_s: float = 10.0, command_prefix: tuple[str, ...] = (),
    ):
        self._config = config
        self._binary = binary
        self._prefix = command_prefix
        """Run Kamailio through this (``setpriv --pdeathsig TERM --``: it stops with its
        supervisor even if the supervisor is killed)."""
        self._ready_timeout_s = ready_timeout_s
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._lines: deque[str] = deque(maxlen=_LOG_KEPT)
        self._stopping = False
        self._log = log.getChild(config.name)
        self._rpc_ids = itertools.count(1)

    @property
    def config(self) -> DispatcherConfig:
        """The configuration running now (``reload`` replaces its destinations)."""
        return self._config

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the main process has ended (negative: killed by that signal)."""
        return self._process.returncode if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    def recent_log(self, lines: int = 30) -> list[str]:
        """Kamailio's last stderr lines, oldest first (what an error report quotes)."""
        return list(self._lines)[-lines:]

    async def __aenter__(self) -> Kamailio:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Write the files, start Kamailio and return once it answers RPC; else KamailioError.

        On failure nothing is left running, and the error quotes Kamailio's last log lines.
        """
        if self.running:
            raise RuntimeError("Kamailio is already running")
        if self._process is not None:
            # After a crash of the main process its workers live on, holding the SIP ports
            # (and its TCP workers spin on their closed pipe): finish them off first.
            await self.stop()
        binary = self._binary or find_kamailio()
        cfg = self._config
        try:
            await asyncio.to_thread(_write_files, cfg)
        except OSError as exc:
            raise KamailioError(
                f"Impossible d'écrire la configuration de Kamailio dans {cfg.runtime_dir} : "
                f"{exc.strerror}."
            ) from None
        self._lines.clear()
        self._stopping = False
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self._prefix, str(binary), "-f", str(cfg.cfg_path), "-DD", "-E",
                "-Y", str(cfg.runtime_dir), "-P", str(cfg.pid_path), "-w", str(cfg.runtime_dir),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise KamailioError(f"Impossible de lancer {binary} : {exc.strerror}.") from None
        self._reader = asyncio.create_task(self._read_log(self._process))
        try:
            await self._wait_ready(self._process)
        except BaseException:
            await self.stop()
            raise
        self._log.info(
            "kamailio %s ready on %s:%d (%s), pid %d, %d destination(s)",
            cfg.name, cfg.listen_host, cfg.listen_port, ",".join(cfg.transports),
            self._process.pid, len(cfg.destinations),
        )

    async def wait(self) -> int:
        """Until the main process ends, for whatever reason; its exit status."""
        if self._process is None:
            raise RuntimeError("Kamailio was never started")
        return await self._process.wait()

    async def stop(self, grace_s: float = _STOP_GRACE_S) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; then any worker left in its group is killed."""
        process = self._process
        if process is None:
            return
        self._stopping = True
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), grace_s)
            except asyncio.TimeoutError:
                self._log.warning("kamailio %d ignored SIGTERM for %.0f s, killed",
                                  process.pid, grace_s)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        for pid in _group_members(process.pid):  # its workers normally went with it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self._reader is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._reader), grace_s)
            except asyncio.TimeoutError:
                self._reader.cancel()
            self._reader = None

    async def rpc(self, method: str, *params: object, timeout_s: float = _RPC_TIMEOUT_S) -> Any:
        """One JSON-RPC call (``dispatcher.list``, ``core.version``…); its ``result``."""
        if not self.running:
            raise KamailioError(f"Kamailio « {self._config.name} » ne tourne pas.")
        request = {"jsonrpc": "2.0", "method": method, "params": list(params),
                   "id": next(self._rpc_ids)}
        try:
            reply = await asyncio.to_thread(
                _rpc_exchange, self._config.rpc_socket, json.dumps(request).encode(), timeout_s
            )
        except (OSError, ValueError) as exc:
            raise KamailioError(
                f"Kamailio « {self._config.name} » ne répond pas à la commande {method} "
                f"({exc})."
            ) from None
        if "error" in reply:
            error = reply["error"]
            raise KamailioError(
                f"Kamailio a refusé la commande {method} : {error.get('message', error)} "
                f"(code {error.get('code', '?')})."
            )
        return reply.get("result")

    async def set_state(self, uri: str, state: str) -> None:
        """Mark a destination ``active``, ``inactive`` (its keepalives may bring it back) or
        ``disabled`` (out until set active again)."""
        if state not in STATES:
            raise KamailioError(
                f"État « {state} » inconnu pour {uri} : active, inactive ou disabled."
            )
        sets = {d.uri: SET_ID for d in self._config.destinations}
        sets.update({d.uri: RESCUE_SET_ID for d in self._config.rescue})
        if uri not in sets:
            raise KamailioError(
                f"Destination inconnue : {uri}. Destinations : {', '.join(sets) or 'aucune'}."
            )
        await self.rpc("dispatcher.set_state", STATES[state], sets[uri], uri)

    async def destinations(self) -> list[dict[str, Any]]:
        """Each destination as Kamailio sees it now, in its order:
        ``{"uri", "state" (active|trying|inactive|disabled), "probing", "flags", "priority"}``.
        ``trying`` failed a keepalive but is still used until the failure threshold."""
        try:
            result = await self.rpc("dispatcher.list")
        except KamailioError:
            if not self._config.destinations:  # Kamailio reports an empty list as an error
                return []
            raise
        found: list[dict[str, Any]] = []
        for record in (result or {}).get("RECORDS", []):
            group = record.get("SET", {})
            if group.get("ID") != SET_ID:
                continue
            for target in group.get("TARGETS", []):
                dest = target.get("DEST", {})
                flags = str(dest.get("FLAGS", ""))
                found.append({
                    "uri": dest.get("URI"),
                    "state": _FLAG_STATES.get(flags[:1], "unknown"),
                    "probing": flags[1:2] == "P",
                    "flags": flags,
                    "priority": dest.get("PRIORITY", 0),
                })
        return found

    async def reload(self, destinations: Iterable[Destination]) -> None:
        """Replace the destination list live (calls in progress are not affected).

        Every destination starts again as active and probed: states set by ``set_state``
        are not carried over. Kamailio accepts one reload per second; a second one within
        that second is retried until it goes through.
        """
        config = dataclasses.replace(self._config, destinations=tuple(destinations))
        await asyncio.to_thread(_write_atomically, config.list_path,
                                render_dispatcher_list(config))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _RELOAD_TIMEOUT_S
        while True:
            try:
                await self.rpc("dispatcher.reload")
                break
            except KamailioError:
                if loop.time() > deadline or not self.running:
                    raise
            await asyncio.sleep(0.2)  # Kamailio's reload_delta (1 s): poll it with a deadline
        self._config = config
        self._log.info("kamailio %s reloaded: %d destination(s)", config.name,
                       len(config.destinations))

    async def _wait_ready(self, process: asyncio.subprocess.Process) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._ready_timeout_s
        exited = asyncio.ensure_future(process.wait())
        try:
            while True:
                if exited.done():
                    await self._drain_log()
                    raise self._start_error(process.returncode)
                try:
                    await self.rpc("core.version", timeout_s=0.5)
                    return
                except KamailioError:
                    pass
                if loop.time() > deadline:
                    raise KamailioError(
                        f"Kamailio « {self._config.name} » ne répond pas "
                        f"{self._ready_timeout_s:.0f} s après son lancement. "
                        f"Dernières lignes de son journal :\n{self._quoted_log()}"
                    )
                # Waiting on another process: poll with a deadline, wake at once if it exits.
                await asyncio.wait({exited}, timeout=_READY_POLL_S)
        finally:
            if not exited.done():
                exited.cancel()

    def _start_error(self, code: int | None) -> KamailioError:
        cfg = self._config
        text = "\n".join(self._lines)
        if "Address already in use" in text:
            reason = (
                f"le port SIP {cfg.listen_host}:{cfg.listen_port} est déjà utilisé par un autre "
                "programme (un autre Kamailio, voicebot serve…) : arrêtez-le ou choisissez un "
                "autre port"
            )
        elif "Cannot assign requested address" in text:
            reason = f"l'adresse {cfg.listen_host} n'existe pas sur cette machine"
        elif "parse error" in text or "bad config file" in text:
            reason = f"sa configuration {cfg.cfg_path} est refusée"
        else:
            reason = f"il s'est arrêté au démarrage (code {code})"
        return KamailioError(
            f"Kamailio « {cfg.name} » n'a pas pu démarrer : {reason}. "
            f"Dernières lignes de son journal :\n{self._quoted_log()}"
        )

    def _quoted_log(self) -> str:
        return "\n".join(f"  {line}" for line in self.recent_log(15)) or "  (vide)"

    async def _drain_log(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)

    async def _read_log(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode("utf-8", "replace").rstrip()
            if not line.strip():
                continue
            self._lines.append(line)
            match = _LOG_LINE.match(line)
            level = _LOG_LEVELS.get(match.group("level"), logging.INFO) if match else logging.DEBUG
            if self._stopping and level > logging.INFO:
                level = logging.DEBUG  # "child process exited" alerts while we stop it
            self._log.log(level, "kamailio: %s", match.group("text") if match else line)


def _write_files(cfg: DispatcherConfig) -> None:
    cfg.runtime_dir.mkdir(parents=True, exist_ok=True)
    running = _running_pid(cfg)
    if running is not None:  # its sockets are about to be replaced: refuse instead
        raise KamailioError(
            f"Un autre Kamailio (pid {running}) utilise déjà le dossier {cfg.runtime_dir} : "
            "arrêtez-le, ou donnez un autre dossier à celui-ci."
        )
    for stale in (cfg.rpc_socket, cfg.ctl_socket, cfg.pid_path):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    _write_atomically(cfg.cfg_path, render_config(cfg))
    _write_atomically(cfg.list_path, render_dispatcher_list(cfg))


def _running_pid(cfg: DispatcherConfig) -> int | None:
    """The pid in the pid file if that process still runs Kamailio on this cfg, else None."""
    try:
        pid = int(cfg.pid_path.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if str(cfg.cfg_path).encode() in command else None


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _rpc_exchange(rpc_socket: Path, request: bytes, timeout_s: float) -> dict[str, Any]:
    """One datagram out, one back. The client socket is abstract: no file to clean up."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(f"\0allo-caf-rpc-{uuid.uuid4().hex}")
        sock.settimeout(timeout_s)
        sock.sendto(request, str(rpc_socket))
        reply = json.loads(sock.recv(1 << 16))
    if not isinstance(reply, dict):
        raise ValueError(f"unexpected RPC reply {reply!r}")
    return reply


def _group_members(pgid: int) -> set[int]:
    """Live processes of process group ``pgid`` (Kamailio's main and its workers)."""
    members: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(entry.name))
    return members
