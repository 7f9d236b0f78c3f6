"""Where each process of a node listens, computed in one place from the settings.

The supervisor uses the plan to start the workers and to write Kamailio's destination list;
each worker recomputes its own slot from the same settings and its index, so the two can
never disagree about a port.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from bot.errors import SettingsError
from telephony_adapter.options import NodeOptions, TelephonyOptions

MIN_RTP_PORTS_PER_WORKER = 16
"""Two ports (RTP, RTCP) per call, for the pjsua2 wheel's 4 calls, with room to spare."""


@dataclass(frozen=True)
class WorkerPlan:
    index: int
    telephony: TelephonyOptions
    """The worker's own SIP port, RTP range and call limit."""
    rescue: bool = False
    """The node's rescue worker: Kamailio's last resort, which takes every call it can (a
    worker that refused an INVITE would see it come back as a loop)."""

    @property
    def name(self) -> str:
        return "rescue" if self.rescue else f"worker-{self.index}"

    @property
    def uri(self) -> str:
        return f"sip:{self.telephony.sip_host}:{self.telephony.sip_port}"


@dataclass(frozen=True)
class NodePlan:
    sip_host: str
    sip_port: int
    """The node's one SIP address: Kamailio's."""
    engine_host: str
    engine_port: int
    workers: tuple[WorkerPlan, ...]
    rescue: WorkerPlan
    """Listens right after the last worker."""

    @property
    def all_workers(self) -> tuple[WorkerPlan, ...]:
        return (*self.workers, self.rescue)

    @property
    def engine_url(self) -> str:
        return f"ws://{self.engine_host}:{self.engine_port}"

    @property
    def capacity(self) -> int:
        """Callers the workers can take at once, last-resort calls aside."""
        return sum(w.telephony.max_calls for w in self.workers)


def default_workers(telephony: TelephonyOptions, node: NodeOptions) -> int:
    wanted = telephony.max_calls + telephony.sip_extra_calls
    return max(1, math.ceil(wanted / max(1, node.calls_per_worker)))


def plan_node(telephony: TelephonyOptions, node: NodeOptions, workers: int | None = None,
              engine_port: int | None = None) -> NodePlan:
    """The node's layout; ``workers``/``engine_port`` override the settings (command line)."""
    count = workers or node.workers or default_workers(telephony, node)
    if node.calls_per_worker < 1:
        raise SettingsError("node.calls_per_worker : au moins 1 appel par processus SIP.")
    if telephony.sip_port <= 0:
        raise SettingsError("telephony.sip_port : un port fixe est nécessaire pour le nœud "
                            "(Kamailio y écoute, les processus SIP sur les suivants).")
    first = node.worker_sip_port or telephony.sip_port + 1
    rtp_span = telephony.rtp_port_max - telephony.rtp_port_min + 1
    per_worker = (rtp_span // (count + 1)) & ~1
    if per_worker < MIN_RTP_PORTS_PER_WORKER:
        raise SettingsError(
            f"telephony.rtp_port_min/max : {rtp_span} ports RTP pour {count + 1} processus SIP "
            f"(dont celui de secours), il en faut au moins {MIN_RTP_PORTS_PER_WORKER} chacun ; "
            "élargissez la plage.")
    plans = []
    for index in range(count + 1):
        low = telephony.rtp_port_min + index * per_worker
        plans.append(WorkerPlan(index, dataclasses.replace(
            telephony, sip_port=first + index, rtp_port_min=low,
            rtp_port_max=low + per_worker - 1, max_calls=node.calls_per_worker,
            sip_extra_calls=0, http_port=0), rescue=index == count))
    port = node.engine_port if engine_port is None else engine_port
    return NodePlan(telephony.sip_host, telephony.sip_port, node.engine_host, port,
                    tuple(plans[:-1]), plans[-1])
