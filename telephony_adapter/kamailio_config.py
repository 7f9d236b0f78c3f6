"""What the SIP dispatcher is told: its address, destinations and timings, checked at once.

One ``DispatcherConfig`` describes one Kamailio: the node's single SIP address in front of its
media workers, or the front balancer in front of several nodes (the same routing, other
destinations). Every value a person can get wrong is checked when it is built, and all the
problems are reported together in French, so that Kamailio is never started with a
configuration it would refuse. ``kamailio_render.py`` turns it into Kamailio's files,
``kamailio.py`` runs them.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path

from bot.errors import VoicebotError

LAST_RESORT_HEADER = "X-Allo-Last-Resort"
"""Header of the last attempt: a worker that sees it answers even without its speech engine
(apology, then transfer to an advisor), so that a caller never hears busy or silence."""

DEFAULT_FAILOVER_CODES = (408, 480, 486, 500, 502, 503, 504)
"""Final replies after which the next destination is tried: 486 (worker full), 503 (worker
draining, or a node with nothing left), 408/480/5xx (gone or broken). Local timeouts too."""

TRANSPORTS = ("udp", "tcp")
SET_ID = 1
"""The dispatcher set of every destination of this balancer."""
RESCUE_SET_ID = 2
"""The set of the last resort's destinations, when there are any (``rescue``)."""
CFG_NAME = "kamailio.cfg"
LIST_NAME = "dispatcher.list"
PID_NAME = "kamailio.pid"
RPC_SOCKET_NAME = "rpc.sock"
"""jsonrpcs over a Unix datagram socket: what ``Kamailio`` itself talks to (JSON replies)."""
CTL_SOCKET_NAME = "ctl.sock"
"""The ctl module's binrpc socket, for people: ``kamcmd -s unix:<runtime_dir>/ctl.sock``."""
_UNIX_PATH_MAX = 107
"""Longest Unix socket path Linux accepts (``sun_path`` is 108 bytes with the final NUL)."""
_URI = re.compile(
    r"^sip:(?:[A-Za-z0-9._~!$&'()*+,;=-]+@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])"
    r"(?::(?P<port>\d{1,5}))?(?P<params>(?:;[A-Za-z0-9=._-]+)*)$"
)
_NAME = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


class KamailioError(VoicebotError):
    """Kamailio is missing, cannot start, or was given a value it cannot use (French message)."""


@dataclass(frozen=True)
class Destination:
    """One place INVITEs may go: a media worker of this node, or a node behind a front balancer."""

    uri: str
    """``sip:HOST:PORT`` (``;transport=tcp`` optional), exactly as Kamailio lists it: the RPC
    commands (``set_state``) match this text, not the address it resolves to."""
    priority: int = 0
    """Order inside the set, highest first; round-robin then cycles in that order."""
    weight: int | None = None
    """Share of the calls in percent (1–100). Set on every destination or on none: with
    weights, selection is weight-based (Kamailio algorithm 9) instead of round-robin, and
    the weights must add up to 100."""


@dataclass(frozen=True)
class DispatcherConfig:
    """Everything one Kamailio dispatcher needs; invalid values raise ``KamailioError`` here."""

    destinations: tuple[Destination, ...]
    """Where initial INVITEs are dispatched (dispatcher set 1). May be empty: every INVITE
    then gets 503 and OPTIONS to the balancer gets 503."""
    runtime_dir: Path
    """Where the cfg, the destination list, the pid file and the RPC sockets go. Created if
    missing; its path must stay short (Unix sockets: about 90 characters at most)."""
    rescue: tuple[Destination, ...] = ()
    """Where the last resort goes (dispatcher set 2), when not empty: destinations that
    take every call and never saw the INVITE before. A SIP user agent that already refused
    an INVITE treats the same INVITE coming back as a loop (482), so the last attempt must
    reach someone new: a node's rescue worker. Empty: the last resort goes to set 1 (a
    front balancer, whose nodes then pass it to their own rescue worker)."""
    listen_host: str = "127.0.0.1"
    """The address Kamailio listens on (an IP address): the node's single SIP address."""
    listen_port: int = 5060
    """Its SIP port, for every transport."""
    transports: tuple[str, ...] = TRANSPORTS
    """``udp``, ``tcp`` or both, on ``listen_host:listen_port``. Destinations are reached
    over UDP unless their URI says ``;transport=tcp``."""
    edge: bool = True
    """First hop from the operator (a node alone on the line, or the front balancer): when
    every destination failed, try once more with ``X-Allo-Last-Resort: 1``. A node's own
    Kamailio behind a front balancer is ``False``: it answers 503 so the front tries
    another node, and only joins in the last resort when the INVITE carries the header."""
    probe_interval_s: int = 2
    """Seconds between OPTIONS keepalives to every destination (whole seconds, >= 1)."""
    probe_failures_to_inactive: int = 2
    """Failed keepalives in a row (timeout or a non-2xx reply, 503 included) after which a
    destination is skipped (inactive)."""
    probe_successes_to_active: int = 1
    """2xx replies in a row after which an inactive destination is used again."""
    failover_timeout_ms: int = 1500
    """How long a destination may stay silent (no reply at all, not even 100 Trying) before
    the next one is tried; it is also the keepalive timeout (tm ``fr_timer``)."""
    answer_timeout_ms: int = 30000
    """After a provisional reply, how long to wait for the final one before trying the next
    destination (tm ``fr_inv_timer``). On a front balancer it must cover a node's whole
    failover chain, since the node's Kamailio sends 100 Trying at once."""
    failover_codes: tuple[int, ...] = DEFAULT_FAILOVER_CODES
    """Final replies after which the next destination is tried. Other replies (404, 603…)
    go back to the caller as they are."""
    children: int = 4
    """SIP receiver processes per UDP socket (and TCP workers): a loopback dispatcher relays
    a few calls a second, four leave room for bursts."""
    name: str = "allo-caf"
    """Label in the logs and in the ``From`` of keepalives (letters, digits, ``._-``)."""
    log_level: int = 1
    """Kamailio's own verbosity: 0 warnings, 1 notices (each failover, each destination
    going down or up), 2 info, 3 debug."""

    def __post_init__(self) -> None:
        errors = _check(self)
        if errors:
            raise KamailioError(
                "Réglages du répartiteur SIP (Kamailio) invalides :\n"
                + "\n".join(f"  - {e}" for e in errors)
            )

    @property
    def cfg_path(self) -> Path:
        return self.runtime_dir / CFG_NAME

    @property
    def list_path(self) -> Path:
        return self.runtime_dir / LIST_NAME

    @property
    def pid_path(self) -> Path:
        return self.runtime_dir / PID_NAME

    @property
    def rpc_socket(self) -> Path:
        return self.runtime_dir / RPC_SOCKET_NAME

    @property
    def ctl_socket(self) -> Path:
        return self.runtime_dir / CTL_SOCKET_NAME

    @property
    def algorithm(self) -> int:
        """Kamailio's selection algorithm: 9 (weights) when weights are given, else 4."""
        return 9 if any(d.weight is not None for d in self.destinations) else 4


@dataclass(frozen=True)
class BalancerOptions:
    """``voicebot balancer``: Kamailio in front of several nodes (settings section ``balancer``)."""

    sip_host: str = "127.0.0.1"
    """Address the front balancer listens on: the one address the operator's SBC calls."""
    sip_port: int = 5060
    """Its SIP port (UDP and TCP)."""
    nodes: tuple[str, ...] = ()
    """Each node's SIP address, ``HOST:PORT`` (its own Kamailio), e.g.
    ``10.0.0.11:5060,10.0.0.12:5060`` in ``VOICEBOT_BALANCER_NODES``."""
    runtime_dir: Path | None = None
    """Where the generated files and sockets go; empty: ``<state_dir>/balancer``."""
    probe_interval_s: int = 2
    """Seconds between OPTIONS keepalives to each node."""
    failover_timeout_ms: int = 1500
    """A node silent this long (not even 100 Trying) is skipped for the next one."""
    answer_timeout_ms: int = 30000
    """After a node's 100 Trying, how long its final answer may take (its own failover)."""


def node_destination(address: str) -> Destination:
    """``HOST:PORT`` (or a full ``sip:`` URI) as a destination; French error if malformed."""
    text = address.strip()
    uri = text if text.startswith("sip:") else f"sip:{text}"
    match = _URI.match(uri)
    if match is None or match.group("port") is None:
        raise KamailioError(
            f"Adresse de nœud invalide : « {address} ». Attendu : HÔTE:PORT "
            "(par exemple 127.0.0.1:5070) ou sip:HÔTE:PORT."
        )
    return Destination(uri=uri)


def _check(cfg: DispatcherConfig) -> list[str]:
    """Every problem at once, in French, each naming the value and what is accepted."""
    errors: list[str] = []
    try:
        unspecified = ipaddress.ip_address(cfg.listen_host).is_unspecified
    except ValueError:
        unspecified = True
    if unspecified:
        errors.append(
            f"listen_host « {cfg.listen_host} » : l'adresse IP précise à laquelle le SBC "
            "envoie les appels est attendue (127.0.0.1, 10.0.0.5…), pas 0.0.0.0 ni un nom."
        )
    if not 1 <= cfg.listen_port <= 65535:
        errors.append(f"listen_port {cfg.listen_port} : un port entre 1 et 65535 est attendu.")
    bad = [t for t in cfg.transports if t not in TRANSPORTS]
    if bad or not cfg.transports or len(set(cfg.transports)) != len(cfg.transports):
        errors.append(
            f"transports {list(cfg.transports)} : choisissez udp, tcp ou les deux, sans doublon."
        )
    seen: set[str] = set()
    for d in (*cfg.destinations, *cfg.rescue):
        match = _URI.match(d.uri)
        if match is None or any(c.isspace() or c in "\"'" for c in d.uri):
            errors.append(
                f"destination « {d.uri} » : attendu sip:HÔTE:PORT (par exemple "
                "sip:127.0.0.1:5061), éventuellement suivi de ;transport=tcp."
            )
        elif match.group("port") is not None and not 1 <= int(match.group("port")) <= 65535:
            errors.append(f"destination « {d.uri} » : port hors de 1–65535.")
        if d.uri.lower() in seen:
            errors.append(f"destination « {d.uri} » : en double.")
        seen.add(d.uri.lower())
        if d.weight is not None and not 1 <= d.weight <= 100:
            errors.append(f"destination « {d.uri} » : weight {d.weight} hors de 1–100.")
    weights = [d.weight for d in cfg.destinations]
    if any(w is not None for w in weights):
        if any(w is None for w in weights):
            errors.append("weight : donnez un poids à toutes les destinations ou à aucune.")
        elif sum(w for w in weights if w is not None) != 100:
            errors.append(
                f"weight : la somme des poids vaut {sum(w for w in weights if w is not None)}, "
                "elle doit valoir 100."
            )
    if not isinstance(cfg.probe_interval_s, int) or not 1 <= cfg.probe_interval_s <= 3600:
        errors.append(
            f"probe_interval_s {cfg.probe_interval_s} : un nombre entier de secondes entre "
            "1 et 3600 est attendu."
        )
    for label, value in (
        ("probe_failures_to_inactive", cfg.probe_failures_to_inactive),
        ("probe_successes_to_active", cfg.probe_successes_to_active),
    ):
        if not 1 <= value <= 100:
            errors.append(f"{label} {value} : un nombre entre 1 et 100 est attendu.")
    if not 100 <= cfg.failover_timeout_ms <= 60000:
        errors.append(
            f"failover_timeout_ms {cfg.failover_timeout_ms} : entre 100 et 60000 ms "
            "(1500 conseillé)."
        )
    if not cfg.failover_timeout_ms <= cfg.answer_timeout_ms <= 600000:
        errors.append(
            f"answer_timeout_ms {cfg.answer_timeout_ms} : entre failover_timeout_ms et "
            "600000 ms."
        )
    bad_codes = [c for c in cfg.failover_codes if not 300 <= c <= 699 or c == 487]
    if bad_codes or not cfg.failover_codes:
        errors.append(
            f"failover_codes {list(cfg.failover_codes)} : des codes SIP finaux de 300 à 699 "
            "sont attendus (487, appel annulé, n'en est pas un)."
        )
    if not 1 <= cfg.children <= 64:
        errors.append(f"children {cfg.children} : entre 1 et 64.")
    if not 0 <= cfg.log_level <= 3:
        errors.append(f"log_level {cfg.log_level} : 0, 1, 2 ou 3.")
    if not _NAME.match(cfg.name):
        errors.append(
            f"name « {cfg.name} » : lettres, chiffres, point, tiret ou souligné (40 au plus)."
        )
    longest = cfg.runtime_dir / RPC_SOCKET_NAME
    if not cfg.runtime_dir.is_absolute():
        errors.append(f"runtime_dir « {cfg.runtime_dir} » : un chemin absolu est attendu.")
    elif len(str(longest)) > _UNIX_PATH_MAX - 20:
        errors.append(
            f"runtime_dir « {cfg.runtime_dir} » : chemin trop long pour une socket Unix "
            f"({len(str(longest))} caractères avec {RPC_SOCKET_NAME}, "
            f"{_UNIX_PATH_MAX - 20} au plus) ; choisissez un dossier plus court."
        )
    elif any(c.isspace() or c in "\"'\\" for c in str(cfg.runtime_dir)):
        errors.append(
            f"runtime_dir « {cfg.runtime_dir} » : ni espace, ni guillemet, ni barre oblique "
            "inverse."
        )
    return errors
