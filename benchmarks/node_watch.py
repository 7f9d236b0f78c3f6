"""What the node costs and whether it stays whole, sampled from outside while calls run.

Every ``period_s`` (in a thread, off the event loop that clocks the phones): the node's
process tree from ``/proc`` (the serve process and all its descendants: engine, SIP
workers, Kamailio…), the PSS and RSS of each process, the machine's load average and
available memory, and ``GET /health``. From these:

- memory: PSS summed over the tree (what the node really takes; RSS counts shared pages
  once per process) and RSS, their peaks, and a breakdown by process at the PSS peak;
- crashes: a process of the tree seen at the start of the window that is gone before the
  node is stopped (with its command line and when), the serve process itself exiting,
  and ``/health`` answering anything but 200;
- CPU, over a window (``Window``): the machine's busy share from ``/proc/stat``, the
  tree's CPU seconds (processes gone since are counted up to their last sample).
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import time
from dataclasses import dataclass, field

from sip_load import (
    Node,
    cpu_seconds,
    loadavg,
    machine_cpu,
    mem_available_mb,
    memory_kb,
    process_name,
    process_tree,
    start_ticks,
)

MB = 10**6


def _mb(kb: int) -> int:
    return round(kb * 1024 / MB)


@dataclass
class Sample:
    at: float
    pss_kb: int
    rss_kb: int
    procs: dict[tuple[int, int], tuple[str, int, int, float]]
    """(pid, start ticks) → (name, PSS kB, RSS kB, CPU s)."""
    load1: float
    available_mb: int
    health: int


@dataclass
class NodeWatch:
    node: Node
    period_s: float = 2.0
    samples: list[Sample] = field(default_factory=list)
    names: dict[tuple[int, int], str] = field(default_factory=dict)

    def sample(self) -> Sample:
        procs = {}
        for pid in process_tree(self.node.pid):
            key = (pid, start_ticks(pid))
            if key not in self.names:
                self.names[key] = process_name(pid)
            pss, rss = memory_kb(pid)
            procs[key] = (self.names[key], pss, rss, cpu_seconds(pid))
        status, _ = self.node.http("/health")
        s = Sample(time.monotonic(), sum(p[1] for p in procs.values()),
                   sum(p[2] for p in procs.values()), procs, loadavg()[0],
                   mem_available_mb(), status)
        self.samples.append(s)
        return s

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.sample)
            try:
                await asyncio.wait_for(stop.wait(), self.period_s)
            except asyncio.TimeoutError:
                pass

    def between(self, t0: float, t1: float) -> list[Sample]:
        return [s for s in self.samples if t0 <= s.at <= t1]

    def memory(self, t0: float, t1: float) -> dict:
        window = self.between(t0, t1)
        if not window:
            return {}
        peak = max(window, key=lambda s: s.pss_kb)
        return {
            "unit": "MB = 10^6 bytes",
            "pss_peak_mb": _mb(peak.pss_kb),
            "rss_peak_mb": _mb(max(s.rss_kb for s in window)),
            "pss_median_mb": _mb(int(statistics.median(s.pss_kb for s in window))),
            "processes_at_peak": len(peak.procs),
            "by_process_at_peak": sorted(
                ({"pid": pid, "name": name, "pss_mb": _mb(pss), "rss_mb": _mb(rss)}
                 for (pid, _), (name, pss, rss, _) in peak.procs.items()),
                key=lambda p: -p["pss_mb"])[:12],
            "machine_available_mb_min": min(s.available_mb for s in window),
            "samples": len(window),
        }

    def crashes(self, t0: float, t1: float) -> dict:
        """Processes of the tree at ``t0`` gone by ``t1``, new ones, /health failures."""
        window = self.between(t0, t1)
        if not window:
            return {"samples": 0}
        first, last = window[0].procs, window[-1].procs
        gone = []
        for key, (name, *_rest) in first.items():
            if key not in last:
                seen = [s.at for s in window if key in s.procs]
                gone.append({"pid": key[0], "name": name,
                             "last_seen_s": round(max(seen) - t0, 1)})
        started = [{"pid": key[0], "name": self.names[key]}
                   for key in last if key not in first]
        bad_health = [s.health for s in window if s.health != 200]
        return {"processes_at_start": len(first), "processes_at_end": len(last),
                "gone": gone, "new_long_lived": started,
                "health_not_200": len(bad_health), "health_codes": sorted(set(bad_health)),
                "node_exited": not self.node.alive}


@dataclass
class Window:
    """CPU and load over one measured stretch (a round, the soak)."""

    watch: NodeWatch
    started: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.self0 = _own_cpu()
        self.machine0 = machine_cpu()
        self.load0 = loadavg()
        self.tree0 = self._tree_cpu()

    def _tree_cpu(self) -> dict[tuple[int, int], float]:
        return {(pid, start_ticks(pid)): cpu_seconds(pid)
                for pid in process_tree(self.watch.node.pid)}

    def close(self, phones_cpu_s: float | None = None) -> dict:
        ended = time.monotonic()
        busy1, total1 = machine_cpu()
        busy0, total0 = self.machine0
        # the tree's CPU: now, or at its last sample for a process gone meanwhile
        spent: dict[tuple[int, int], float] = {}
        for s in self.watch.between(self.started, ended):
            for key, (_, _, _, cpu) in s.procs.items():
                spent[key] = cpu
        spent.update(self._tree_cpu())
        node_cpu = sum(cpu - self.tree0.get(key, 0.0) for key, cpu in spent.items())
        wall = max(1e-9, ended - self.started)
        cores = os.cpu_count() or 1
        loads = [s.load1 for s in self.watch.between(self.started, ended)]
        out = {
            "machine_busy_pct": round(100 * (busy1 - busy0) / max(1, total1 - total0), 1),
            "node_cpu_s": round(node_cpu, 1),
            "node_cpu_pct_of_all_cores": round(100 * node_cpu / (wall * cores), 1),
            "cores": cores,
            "loadavg_start": self.load0,
            "load1_max": max(loads, default=None),
            "loadavg_end": loadavg(),
            "wall_s": round(wall, 1),
        }
        bench_cpu = _own_cpu() - self.self0
        out["benchmark_cpu_s"] = round(bench_cpu, 1)
        out["phones_cpu_s"] = round(phones_cpu_s or 0.0, 1)
        ours = node_cpu + bench_cpu + (phones_cpu_s or 0.0)
        out["other_work_pct_of_all_cores"] = round(
            max(0.0, out["machine_busy_pct"] - 100 * ours / (wall * cores)), 1)
        out["note"] = ("the phones (baresip) and this benchmark share the cores with the "
                       "node; other_work is what the rest of the machine took meanwhile")
        return out


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
