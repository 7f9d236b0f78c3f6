"""Options of the SIP service: where it listens, where it transfers, when it is open."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class TelephonyOptions:
    sip_host: str = "127.0.0.1"
    """Address the SIP transports and RTP sockets bind to, and advertise in Contact and SDP.
    Behind NAT, bind the private address and let the operator's SBC rewrite it."""
    sip_public_host: str = ""
    """Address written in Contact, Via and SDP when it differs from ``sip_host`` (binding
    ``0.0.0.0``, or a static NAT); empty: ``sip_host``."""
    sip_port: int = 5060
    """SIP port, for UDP and TCP alike."""
    sip_transports: tuple[str, ...] = ("udp", "tcp")
    """Which SIP transports to open: ``udp``, ``tcp`` or both. No TLS: the bundled OpenSSL
    (1.0.2k) is end-of-life; SIP-TLS and SRTP terminate at the operator's SBC."""
    rtp_port_min: int = 40000
    """First RTP port; each call takes two (RTP, RTCP) from here upwards."""
    rtp_port_max: int = 40999
    """Last RTP port; ``(max - min + 1) / 2`` bounds the number of simultaneous calls."""
    codecs: tuple[str, ...] = ("PCMA", "PCMU", "G722")
    """Codecs offered, most preferred first (``PCMU``, ``PCMA``, ``G722``). The caller's
    order wins when it offers several. The 3230 line is G.711; ``G722`` gives wideband audio
    to the ASR of callers who offer it, at the price of a 16 kHz conference bridge that
    resamples every G.711 call (about 80 % more media CPU per call in the workers). A
    G.711-only line can drop it: the bridge then runs at 8 kHz."""
    uplink_frames: int = 3
    """The caller's 20 ms frames are handed to the event loop and the media stream this
    many at a time: one wake-up and one send per 60 ms instead of three, for at most 40 ms
    more before the VAD hears them."""
    trusted_peers: tuple[str, ...] = ()
    """Addresses or networks (``192.0.2.10``, ``10.0.0.0/24``) of the peers whose
    ``P-Asserted-Identity`` is believed: the operator's SBC. Empty (default): no PAI is
    believed and the caller is read from ``From``. ``Privacy: id`` withholds the caller
    whatever the peer (``ledger/caller_id.py``). Env: comma-separated."""
    advisor_uri: str = "sip:conseiller@127.0.0.1:5070"
    """Where calls are transferred (SIP REFER target)."""
    urgent_advisor_uri: str = ""
    """Where urgent calls go (debt or overpayment, payments stopped, social emergency): a
    priority queue of the contact centre. Empty (default): ``advisor_uri``."""
    dossier_personnel_uri: str = ""
    """The Caf's own service for questions about the caller's file (IVR choice 1, whose
    advisors can open it), offered after the bot has pointed to Mon Compte. Empty (default):
    no transfer is offered, the bot tells the caller to call back on choice 1 (the
    contractor's advisors have no access to the file either: CCTP §3.1, §4.1)."""
    transfer_fallback: str = "bridge"
    """What happens when the caller's side refuses REFER: ``bridge`` (the bot calls the
    advisor and bridges both legs' audio, staying in the media path) or ``none`` (the
    transfer fails as refused). SIP has no redirect (302) once a call is answered."""
    transfer_timeout_ms: int = 30000
    """How long a transfer may take, from REFER to the final NOTIFY, before it is given up."""
    max_calls: int = 20
    """Calls the bot converses with at once on a node; above it, the call flow plays the
    saturation message and transfers (the workers still take ``max_calls +
    sip_extra_calls`` calls in all)."""
    sip_extra_calls: int = 10
    """Calls beyond ``max_calls`` the node still answers, so that saturated callers hear the
    saturation message and are transferred instead of getting a busy tone."""
    sip_log_level: int = 2
    """PJSIP's log verbosity sent to the Python log: 1 errors, 2 warnings, 3 info, 4–5 debug
    (5 prints every SIP message)."""
    audio_in_max_frames: int = 500
    """Caller audio chunks kept when the call flow does not read them (500 chunks of
    ``uplink_frames`` × 20 ms: 30 s); older ones are dropped."""
    http_host: str = "127.0.0.1"
    """Address of the health and metrics endpoint."""
    http_port: int = 8080
    """Port of ``/health`` and ``/metrics``; 0 picks a free one."""
    timezone: str = "Europe/Paris"
    """Time zone of the opening hours and closure days."""
    opening_time: str = "09:00"
    """Opening time on open days, local time, ``HH:MM``."""
    closing_time: str = "16:30"
    """Closing time on open days, local time, ``HH:MM`` (a call at 16:30 is out of hours)."""
    open_weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    """Open days of the week, Monday = 0 (Monday to Friday by default)."""
    closures_file: Path | None = None
    """Extra closure days, one ISO date (``2025-12-26``) per line, ``#`` starts a comment.
    French public holidays are always closed and need not be listed."""
    crisis_message_file: Path | None = None
    """A text file that supervisors fill to switch on a crisis or saturation message, read
    at every call (no restart); empty or missing file: no message."""
    now: str = ""
    """Freeze "now" for tests and rehearsals: an ISO datetime with its offset
    (``2025-03-03T10:00:00+01:00``). Empty: the real clock."""


@dataclass(frozen=True)
class NodeOptions:
    """How ``voicebot serve`` lays a node out: Kamailio on the SIP address, SIP media workers
    on the ports after it, one speech engine (docs/node.md)."""

    workers: int = 0
    """SIP media worker processes; 0: enough for ``max_calls + sip_extra_calls`` callers at
    ``calls_per_worker`` each."""
    calls_per_worker: int = 2
    """Callers one worker takes. The PyPI pjsua2 wheel holds 4 calls per process (compiled
    ``PJSUA_MAX_CALLS``), and a transfer that falls back to a bridge needs a second call
    slot, so 2 keeps a free slot for every caller's bridge."""
    worker_sip_port: int = 0
    """SIP port of the first worker, the next ones follow; 0: ``telephony.sip_port + 1``."""
    engine_host: str = "127.0.0.1"
    """Address of the speech engine's media streams (workers connect there)."""
    engine_port: int = 0
    """Port of the engine's media streams, ``/status`` and ``/metrics``; 0: a free port."""
    edge: bool = True
    """This node's Kamailio is the first hop from the operator: when every worker refuses
    a call, it makes a last attempt that a worker always answers (apology, transfer). Set
    false on nodes behind a front ``voicebot balancer``, which makes that attempt itself."""
    probe_interval_s: int = 2
    """Seconds between Kamailio's OPTIONS keepalives to each worker (whole seconds): a dead
    worker is skipped after two missed ones, and the first call that meets it is delayed
    1.5 s before going to another worker."""
    startup_timeout_s: float = 900.0
    """How long the engine may take to load its models before the node gives up."""
    restart_delay_max_s: float = 30.0
    """A process that keeps dying is restarted after 1 s, 2 s, 4 s… up to this delay."""
    daily_jobs_at: str = "03:30"
    """Local time (``ledger.timezone``, HH:MM) of the node's daily jobs, such as the
    retention purge of transcripts and recordings; a job missed while the node was down
    runs when it starts."""
