"""The SIP dispatcher for real: Kamailio 5.6 between a calling side and answering workers.

Every test starts its own Kamailio(s) on free ports of 127.0.0.1 and real SIP peers
(``sip_peer.py``; baresip for the end-to-end call), and kills them all at the end whatever
happened. Timings use short keepalive intervals so that each test stays within seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from baresip_phone import Baresip, free_port
from sip_peer import RING, SipPeer

from bot.settings import PROJECT_ROOT
from telephony_adapter.kamailio import (
    Destination,
    DispatcherConfig,
    Kamailio,
    KamailioError,
    find_kamailio,
)
from telephony_adapter.kamailio import _group_members as group_members

T = TypeVar("T")
_TEST_LIMIT_S = 25.0
HEADER = "X-Allo-Last-Resort: 1"


class DispatchWorld:
    """One test's Kamailios and peers on 127.0.0.1; ``run`` drives a scenario."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.loop = asyncio.new_event_loop()
        self.kamailios: list[Kamailio] = []
        self.peers: list[SipPeer] = []
        self.phones: list[Baresip] = []
        self.caller: SipPeer | None = None

    def run(self, scenario: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(asyncio.wait_for(scenario, _TEST_LIMIT_S))

    async def peer(self, name: str, **behaviour: Any) -> SipPeer:
        peer = SipPeer(name, **behaviour)
        self.peers.append(peer)
        return await peer.open()

    async def call_from(self) -> SipPeer:
        if self.caller is None:
            self.caller = await self.peer("caller")
        return self.caller

    def config(self, name: str, destinations: list[SipPeer | str], **changes: Any
               ) -> DispatcherConfig:
        uris = [d if isinstance(d, str) else d.uri for d in destinations]
        base = DispatcherConfig(
            destinations=tuple(Destination(u) for u in uris),
            runtime_dir=self.workdir / name, listen_port=free_port(), name=name,
            probe_interval_s=1, failover_timeout_ms=800, children=2,
        )
        return dataclasses.replace(base, **changes)

    async def kamailio(self, name: str, destinations: list[SipPeer | str], **changes: Any
                       ) -> Kamailio:
        kamailio = Kamailio(self.config(name, destinations, **changes))
        self.kamailios.append(kamailio)
        await kamailio.start()
        return kamailio

    async def close(self) -> None:
        for phone in self.phones:
            await phone.stop()
        for kamailio in self.kamailios:
            await kamailio.stop()
        for peer in self.peers:
            peer.close()


@pytest.fixture()
def world(tmp_path: Path) -> Iterator[DispatchWorld]:
    world = DispatchWorld(tmp_path)
    try:
        yield world
    finally:
        try:
            world.loop.run_until_complete(asyncio.wait_for(world.close(), 30))
        finally:
            for kamailio in world.kamailios:  # belt and braces: no Kamailio outlives its test
                if kamailio.pid is not None:
                    for pid in group_members(kamailio.pid):
                        os.kill(pid, signal.SIGKILL)
            for phone in world.phones:
                if phone.process is not None and phone.process.returncode is None:
                    phone.process.kill()
            world.loop.close()


async def wait_state(kamailio: Kamailio, uri: str, state: str, timeout_s: float) -> float:
    """Poll Kamailio until ``uri`` is in ``state``; the seconds it took."""
    started = time.monotonic()
    deadline = started + timeout_s
    while True:
        states = {d["uri"]: d["state"] for d in await kamailio.destinations()}
        if states.get(uri) == state:
            return time.monotonic() - started
        assert time.monotonic() < deadline, f"{uri} still {states.get(uri)}, not {state}"
        await asyncio.sleep(0.1)  # Kamailio is another process: poll with a deadline


def port_of(kamailio: Kamailio) -> int:
    return kamailio.config.listen_port


# -- distribution and failover ------------------------------------------------------------


def test_round_robin_spreads_calls_and_the_dialog_bypasses_the_balancer(world):
    async def scenario():
        workers = [await world.peer(f"w{i}") for i in (1, 2, 3)]
        kamailio = await world.kamailio("k", workers)
        caller = await world.call_from()
        results = [await caller.call(port_of(kamailio)) for _ in range(6)]
        return workers, results

    workers, results = world.run(scenario())
    assert [r.status for r in results] == [200] * 6
    assert [r.answered_by for r in results] == ["w1", "w2", "w3", "w1", "w2", "w3"]
    assert all(r.reply.header("Record-Route") is None for r in results)
    for worker in workers:
        # ACK and BYE came straight from the caller's port, not through Kamailio
        assert {m.source[1] for m in worker.received("ACK") + worker.received("BYE")} == {
            world.caller.port}
        assert len(worker.received("BYE")) == 2


@pytest.mark.parametrize("code", [486, 503])
def test_a_full_or_draining_worker_passes_the_call_on_and_stays_active(world, code):
    async def scenario():
        busy = await world.peer("busy", invite_reply=code)
        free = await world.peer("free")
        kamailio = await world.kamailio("k", [busy, free])
        result = await (await world.call_from()).call(port_of(kamailio))
        return busy, result, await kamailio.destinations()

    busy, result, destinations = world.run(scenario())
    assert (result.status, result.answered_by) == (200, "free")
    assert len(busy.invites()) == 1
    assert result.elapsed_s < 0.7  # at once, not after the 800 ms failover timeout
    assert [d["state"] for d in destinations] == ["active", "active"]


def test_a_silent_destination_costs_one_failover_timeout_then_is_skipped(world):
    async def scenario():
        silent = await world.peer("silent", invite_reply=None)
        alive = await world.peer("alive")
        kamailio = await world.kamailio("k", [silent, alive], probe_interval_s=2,
                                        failover_timeout_ms=1500)
        caller = await world.call_from()
        first = await caller.call(port_of(kamailio))
        states = {d["uri"]: d["state"] for d in await kamailio.destinations()}
        second = await caller.call(port_of(kamailio))
        third = await caller.call(port_of(kamailio))
        return silent, first, states, second, third

    silent, first, states, second, third = world.run(scenario())
    assert (first.status, first.answered_by) == (200, "alive")
    assert 1.4 < first.elapsed_s < 2.2  # the 1500 ms failover timeout, then the next one
    assert states[silent.uri] == "inactive"
    assert (second.answered_by, third.answered_by) == ("alive", "alive")
    assert second.elapsed_s < 1.0 and third.elapsed_s < 1.0
    assert len(silent.invites()) == 1


def test_a_dead_destination_is_skipped_and_used_again_when_it_comes_back(world):
    async def scenario():
        worker = await world.peer("w1")
        other = await world.peer("w2")
        kamailio = await world.kamailio("k", [worker, other])
        port = worker.port
        worker.close()
        went_down_s = await wait_state(kamailio, worker.uri, "inactive", timeout_s=6)
        caller = await world.call_from()
        while_down = [await caller.call(port_of(kamailio)) for _ in range(2)]
        revived = await world.peer("w1", port=port)
        came_back_s = await wait_state(kamailio, revived.uri, "active", timeout_s=4)
        after = [await caller.call(port_of(kamailio)) for _ in range(2)]
        return went_down_s, while_down, came_back_s, after

    went_down_s, while_down, came_back_s, after = world.run(scenario())
    # 2 failed keepalives, each given up after 800 ms, one per second (bounded by wait_state)
    assert went_down_s > 1.5
    assert [r.answered_by for r in while_down] == ["w2", "w2"]
    assert all(r.elapsed_s < 0.7 for r in while_down)
    assert came_back_s < 4
    assert sorted(r.answered_by for r in after) == ["w1", "w2"]


def test_a_destination_answering_keepalives_with_503_is_down_until_it_answers_200(world):
    async def scenario():
        node = await world.peer("node", options_reply=503)
        other = await world.peer("other")
        kamailio = await world.kamailio("k", [node, other])
        await wait_state(kamailio, node.uri, "inactive", timeout_s=5)
        node.options_reply = 200
        await wait_state(kamailio, node.uri, "active", timeout_s=3)
        return node

    node = world.run(scenario())
    assert node.invites() == []


def test_disabled_destinations_make_invites_and_keepalives_answer_503(world):
    async def scenario():
        workers = [await world.peer(f"w{i}") for i in (1, 2)]
        kamailio = await world.kamailio("k", workers)
        caller = await world.call_from()
        before = await caller.options(port_of(kamailio))
        for worker in workers:
            await kamailio.set_state(worker.uri, "disabled")
        with pytest.raises(KamailioError) as unknown:
            await kamailio.set_state("sip:127.0.0.1:9", "disabled")
        assert str(unknown.value) == (
            f"Destination inconnue : sip:127.0.0.1:9. Destinations : {workers[0].uri}, "
            f"{workers[1].uri}.")
        states = [d["state"] for d in await kamailio.destinations()]
        refused = await caller.call(port_of(kamailio))
        probed = await caller.options(port_of(kamailio))
        await kamailio.set_state(workers[1].uri, "active")
        after = await caller.options(port_of(kamailio))
        answered = await caller.call(port_of(kamailio))
        return workers, before, states, refused, probed, after, answered

    workers, before, states, refused, probed, after, answered = world.run(scenario())
    assert before == 200
    assert states == ["disabled", "disabled"]
    assert (refused.status, refused.answered_by) == (503, None)
    assert refused.elapsed_s < 0.7
    assert probed == 503
    assert (after, answered.answered_by) == (200, "w2")
    assert len(workers[0].invites()) == 0


# -- last resort ----------------------------------------------------------------------------


def test_the_edge_retries_once_with_the_last_resort_header_when_all_failed(world):
    async def scenario():
        # speech engines down: 503 to ordinary INVITEs, answered with the header
        workers = [await world.peer(f"w{i}", invite_reply=503, last_resort_reply=200)
                   for i in (1, 2)]
        kamailio = await world.kamailio("k", workers, edge=True)
        result = await (await world.call_from()).call(port_of(kamailio))
        return workers, result

    workers, result = world.run(scenario())
    assert result.status == 200
    invites = [(w.name, i.header("X-Allo-Last-Resort")) for w in workers for i in w.invites()]
    assert sorted(invites, key=lambda x: x[1] or "") == [("w1", None), ("w2", None),
                                                         (result.answered_by, "1")]


def test_the_edge_answers_503_when_the_last_resort_fails_too(world):
    async def scenario():
        workers = [await world.peer(f"w{i}", invite_reply=486) for i in (1, 2)]
        kamailio = await world.kamailio("k", workers, edge=True)
        result = await (await world.call_from()).call(port_of(kamailio))
        return workers, result

    workers, result = world.run(scenario())
    assert (result.status, result.answered_by) == (503, None)
    assert sum(len(w.invites()) for w in workers) == 3


def test_a_node_behind_a_front_answers_503_without_the_header(world):
    async def scenario():
        workers = [await world.peer(f"w{i}", invite_reply=503, last_resort_reply=200)
                   for i in (1, 2)]
        kamailio = await world.kamailio("k", workers, edge=False)
        result = await (await world.call_from()).call(port_of(kamailio))
        return workers, result

    workers, result = world.run(scenario())
    assert (result.status, result.answered_by) == (503, None)
    assert [len(w.invites()) for w in workers] == [1, 1]
    assert all(i.header("X-Allo-Last-Resort") is None for w in workers for i in w.invites())


def test_a_node_behind_a_front_passes_the_header_on(world):
    async def scenario():
        worker = await world.peer("w1", invite_reply=503, last_resort_reply=200)
        kamailio = await world.kamailio("k", [worker], edge=False)
        result = await (await world.call_from()).call(port_of(kamailio), headers=(HEADER,))
        return worker, result

    worker, result = world.run(scenario())
    assert (result.status, result.answered_by) == (200, "w1")
    assert [i.all("X-Allo-Last-Resort") for i in worker.invites()] == [["1"]]


def test_no_selectable_destination_gets_503_at_once_even_at_the_edge(world):
    async def scenario():
        worker = await world.peer("w1", invite_reply=503, last_resort_reply=200)
        kamailio = await world.kamailio("k", [worker], edge=True)
        await kamailio.set_state(worker.uri, "inactive")
        return worker, await (await world.call_from()).call(port_of(kamailio))

    worker, result = world.run(scenario())
    assert (result.status, result.answered_by) == (503, None)
    assert worker.invites() == []


# -- two levels -----------------------------------------------------------------------------


def test_a_front_balancer_spreads_over_nodes_and_moves_on_when_a_node_says_503(world):
    async def scenario():
        a1 = await world.peer("a1", invite_reply=503, last_resort_reply=200)
        b1 = await world.peer("b1")
        node_a = await world.kamailio("na", [a1], edge=False)
        node_b = await world.kamailio("nb", [b1], edge=False)
        front = await world.kamailio(
            "front", [f"sip:127.0.0.1:{port_of(node_a)}", f"sip:127.0.0.1:{port_of(node_b)}"],
            edge=True)
        caller = await world.call_from()
        results = [await caller.call(port_of(front)) for _ in range(2)]
        return a1, b1, results

    a1, b1, results = world.run(scenario())
    assert [(r.status, r.answered_by) for r in results] == [(200, "b1"), (200, "b1")]
    assert len(a1.invites()) == 1  # the first call: node A's worker said 503, A said 503
    assert all(i.header("X-Allo-Last-Resort") is None for i in a1.invites() + b1.invites())


def test_a_front_balancer_sends_the_last_resort_through_a_node_to_its_worker(world):
    async def scenario():
        a1 = await world.peer("a1", invite_reply=503, last_resort_reply=200)
        b1 = await world.peer("b1", invite_reply=503, last_resort_reply=200)
        node_a = await world.kamailio("na", [a1], edge=False)
        node_b = await world.kamailio("nb", [b1], edge=False)
        front = await world.kamailio(
            "front", [f"sip:127.0.0.1:{port_of(node_a)}", f"sip:127.0.0.1:{port_of(node_b)}"],
            edge=True)
        result = await (await world.call_from()).call(port_of(front))
        return a1, b1, result

    a1, b1, result = world.run(scenario())
    assert result.status == 200
    answering = {"a1": a1, "b1": b1}[result.answered_by]
    assert [i.header("X-Allo-Last-Resort") for i in answering.invites()] == [None, "1"]


def test_a_front_balancer_skips_a_node_whose_workers_are_all_disabled(world):
    async def scenario():
        a1 = await world.peer("a1")
        b1 = await world.peer("b1")
        node_a = await world.kamailio("na", [a1], edge=False)
        node_b = await world.kamailio("nb", [b1], edge=False)
        uri_a = f"sip:127.0.0.1:{port_of(node_a)}"
        front = await world.kamailio(
            "front", [uri_a, f"sip:127.0.0.1:{port_of(node_b)}"], edge=True)
        await node_a.set_state(a1.uri, "disabled")
        await wait_state(front, uri_a, "inactive", timeout_s=5)
        caller = await world.call_from()
        results = [await caller.call(port_of(front)) for _ in range(3)]
        await node_a.set_state(a1.uri, "active")
        await wait_state(front, uri_a, "active", timeout_s=3)
        return a1, results

    a1, results = world.run(scenario())
    assert [r.answered_by for r in results] == ["b1", "b1", "b1"]
    assert a1.invites() == []


def test_a_real_phone_calls_a_real_phone_through_two_balancers(world):
    silence = world.workdir / "silence.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(silence),
                    "trim", "0", "6"], check=True)

    async def scenario():
        callee = Baresip(world.workdir, "callee", silence, answermode="auto", record=False)
        world.phones.append(callee)
        await callee.start()
        node = await world.kamailio("node", [f"sip:127.0.0.1:{callee.sip_port}"], edge=False)
        front = await world.kamailio("front", [f"sip:127.0.0.1:{port_of(node)}"], edge=True)
        caller = Baresip(world.workdir, "caller", silence, record=False)
        world.phones.append(caller)
        await caller.start()
        # over TCP to the front, which relays over UDP
        await caller.command("dial", f"sip:callee@127.0.0.1:{port_of(front)};transport=tcp")
        await caller.wait_event("CALL_ESTABLISHED", timeout_s=10)
        await callee.wait_event("CALL_ESTABLISHED", timeout_s=5)
        await caller.command("hangup")
        await callee.wait_event("CALL_CLOSED", timeout_s=5)

    world.run(scenario())


# -- SIP hygiene ----------------------------------------------------------------------------


def test_cancel_reaches_the_ringing_worker(world):
    async def scenario():
        worker = await world.peer("w1", invite_reply=RING)
        kamailio = await world.kamailio("k", [worker])
        result = await (await world.call_from()).cancel_after_ringing(port_of(kamailio))
        return worker, result

    worker, result = world.run(scenario())
    assert result.status == 487
    assert len(worker.received("CANCEL")) == 1


def test_in_dialog_requests_are_relayed_only_towards_destinations(world):
    async def scenario():
        worker = await world.peer("w1")
        kamailio = await world.kamailio("k", [worker])
        caller = await world.call_from()
        port = port_of(kamailio)
        target = ("127.0.0.1", port)

        def dialog(*extra: str) -> list[str]:
            return ["From: <sip:caller@127.0.0.1>;tag=a1", "To: <sip:3230@127.0.0.1>;tag=b2",
                    f"Call-ID: {time.monotonic_ns()}", "CSeq: 5 BYE", *extra]

        to_worker = await caller.request("BYE", f"sip:w1@127.0.0.1:{worker.port}", target,
                                         dialog())
        routed = await caller.request("BYE", f"sip:w1@127.0.0.1:{worker.port}", target,
                                      dialog(f"Route: <sip:127.0.0.1:{port};lr>"))
        elsewhere = await caller.request("BYE", "sip:x@192.0.2.7:5060", target, dialog())
        to_us = await caller.request("BYE", f"sip:3230@127.0.0.1:{port}", target, dialog())
        return worker, to_worker, routed, elsewhere, to_us

    worker, to_worker, routed, elsewhere, to_us = world.run(scenario())
    assert (to_worker.status, to_worker.header("X-Peer")) == (200, "w1")
    assert (routed.status, routed.header("X-Peer")) == (200, "w1")
    assert elsewhere.status == 403
    assert to_us.status == 481
    assert len(worker.received("BYE")) == 2


def test_other_methods_are_refused_and_hops_are_limited(world):
    async def scenario():
        worker = await world.peer("w1")
        kamailio = await world.kamailio("k", [worker])
        caller = await world.call_from()
        target = ("127.0.0.1", port_of(kamailio))
        ruri = f"sip:3230@127.0.0.1:{port_of(kamailio)}"

        def fresh(method: str) -> list[str]:
            return ["From: <sip:caller@127.0.0.1>;tag=a1", f"To: <{ruri}>",
                    f"Call-ID: {time.monotonic_ns()}", f"CSeq: 1 {method}"]

        register = await caller.request("REGISTER", ruri, target, fresh("REGISTER"))
        message = await caller.request("MESSAGE", ruri, target, fresh("MESSAGE"))
        stray_bye = await caller.request("BYE", ruri, target, fresh("BYE"))
        stray_cancel = await caller.request("CANCEL", ruri, target, fresh("CANCEL"))
        looping = await caller.call(port_of(kamailio), headers=("Max-Forwards: 0",))
        return worker, register, message, stray_bye, stray_cancel, looping

    worker, register, message, stray_bye, stray_cancel, looping = world.run(scenario())
    assert (register.status, message.status) == (405, 405)
    assert "INVITE" in (register.header("Allow") or "")
    assert (stray_bye.status, stray_cancel.status) == (481, 481)
    assert looping.status == 483
    assert worker.invites() == []


# -- the process ----------------------------------------------------------------------------


def test_an_empty_list_answers_503_until_destinations_are_loaded(world):
    async def scenario():
        worker = await world.peer("w1")
        kamailio = await world.kamailio("k", [])
        caller = await world.call_from()
        empty = (await kamailio.destinations(), await caller.options(port_of(kamailio)),
                 (await caller.call(port_of(kamailio))).status)
        await kamailio.reload([Destination(worker.uri)])
        loaded = (await caller.options(port_of(kamailio)),
                  (await caller.call(port_of(kamailio))).answered_by)
        return empty, loaded

    empty, loaded = world.run(scenario())
    assert empty == ([], 503, 503)
    assert loaded == (200, "w1")


def test_stop_leaves_no_process_behind(world):
    async def scenario():
        kamailio = await world.kamailio("k", ["sip:127.0.0.1:9"])
        pid = kamailio.pid
        members = group_members(pid)
        await kamailio.stop()
        return kamailio, pid, members

    kamailio, pid, members = world.run(scenario())
    assert pid in members and len(members) > 3  # the main process and its workers
    assert group_members(pid) == set()
    assert not kamailio.running and kamailio.returncode == 0


def test_a_crashed_kamailio_starts_again_without_its_orphaned_workers(world):
    async def scenario():
        worker = await world.peer("w1")
        kamailio = await world.kamailio("k", [worker])
        old = kamailio.pid
        os.kill(old, signal.SIGKILL)
        code = await kamailio.wait()
        orphans = group_members(old)  # still holding the SIP port
        await kamailio.start()
        result = await (await world.call_from()).call(port_of(kamailio))
        return old, code, orphans, result

    old, code, orphans, result = world.run(scenario())
    assert code == -signal.SIGKILL
    assert orphans
    assert group_members(old) == set()
    assert result.answered_by == "w1"


def test_reload_changes_the_destinations_live(world):
    async def scenario():
        w1 = await world.peer("w1")
        w2 = await world.peer("w2")
        kamailio = await world.kamailio("k", [w1])
        caller = await world.call_from()
        before = [await caller.call(port_of(kamailio)) for _ in range(2)]
        await kamailio.reload([Destination(w1.uri), Destination(w2.uri)])
        listed = [d["uri"] for d in await kamailio.destinations()]
        after = [await caller.call(port_of(kamailio)) for _ in range(2)]
        return w1, w2, before, listed, after

    w1, w2, before, listed, after = world.run(scenario())
    assert [r.answered_by for r in before] == ["w1", "w1"]
    assert listed == [w1.uri, w2.uri]
    assert sorted(r.answered_by for r in after) == ["w1", "w2"]


def test_a_second_kamailio_in_the_same_directory_is_refused(world):
    async def scenario():
        first = await world.kamailio("k", ["sip:127.0.0.1:9"])
        second = Kamailio(first.config)
        with pytest.raises(KamailioError) as caught:
            await second.start()
        return first, caught.value, await first.rpc("core.version")

    first, error, version = world.run(scenario())
    assert str(error) == (
        f"Un autre Kamailio (pid {first.pid}) utilise déjà le dossier "
        f"{first.config.runtime_dir} : arrêtez-le, ou donnez un autre dossier à celui-ci.")
    assert version.startswith("kamailio 5.6")


def test_a_taken_port_is_reported_in_french(world):
    async def scenario():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind(("127.0.0.1", 0))
            port = squatter.getsockname()[1]
            with pytest.raises(KamailioError) as caught:
                await world.kamailio("k", ["sip:127.0.0.1:9"], listen_port=port,
                                     transports=("udp",))
        return port, caught.value, world.kamailios[-1]

    port, error, kamailio = world.run(scenario())
    assert str(error).startswith(
        f"Kamailio « k » n'a pas pu démarrer : le port SIP 127.0.0.1:{port} est déjà utilisé "
        "par un autre programme")
    assert not kamailio.running


def test_bad_values_are_reported_in_french_all_at_once(tmp_path):
    with pytest.raises(KamailioError) as caught:
        DispatcherConfig(
            destinations=(Destination("127.0.0.1:5061"), Destination("sip:127.0.0.1:5062")),
            runtime_dir=tmp_path, listen_port=0, transports=("udp", "tls"),
            failover_codes=(486, 487),
        )
    assert str(caught.value).splitlines() == [
        "Réglages du répartiteur SIP (Kamailio) invalides :",
        "  - listen_port 0 : un port entre 1 et 65535 est attendu.",
        "  - transports ['udp', 'tls'] : choisissez udp, tcp ou les deux, sans doublon.",
        "  - destination « 127.0.0.1:5061 » : attendu sip:HÔTE:PORT (par exemple "
        "sip:127.0.0.1:5061), éventuellement suivi de ;transport=tcp.",
        "  - failover_codes [486, 487] : des codes SIP finaux de 300 à 699 sont attendus "
        "(487, appel annulé, n'en est pas un).",
    ]


def test_kamailio_is_installed():
    assert find_kamailio().name == "kamailio"


# -- voicebot balancer ----------------------------------------------------------------------


def test_voicebot_balancer_serves_restarts_kamailio_and_stops_cleanly(world):
    port = free_port()
    runtime = world.workdir / "bal"
    settings_file = world.workdir / "voicebot.yml"  # defaults only, whatever the project has
    settings_file.write_text("{}\n")

    async def scenario():
        node = await world.peer("node")
        command = [sys.executable, "-m", "bot.cli.main", "balancer", "--sip-port", str(port),
                   "--node", f"127.0.0.1:{node.port}", "--runtime-dir", str(runtime),
                   "--probe-interval", "1"]
        env = {**os.environ, "VOICEBOT_CONFIG": str(settings_file)}
        process = await asyncio.create_subprocess_exec(
            *command, cwd=PROJECT_ROOT, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)
        lines: list[str] = []

        async def until(words: str) -> None:
            """Read stderr until a new line holds ``words``."""
            assert process.stderr is not None
            while True:
                raw = await asyncio.wait_for(process.stderr.readline(), 15)
                assert raw, f"voicebot balancer ended: {lines}"
                lines.append(raw.decode())
                if words in lines[-1]:
                    return

        try:
            await until("En service")
            caller = await world.call_from()
            first = await caller.call(port)
            pid = int((runtime / "kamailio.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            await until("redémarrage")
            await until("En service")
            second = await caller.call(port)
            new_pid = int((runtime / "kamailio.pid").read_text())
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 10)
            return first, second, pid, new_pid, code, lines
        finally:
            if process.returncode is None:
                os.killpg(process.pid, signal.SIGKILL)
                await process.wait()

    first, second, pid, new_pid, code, lines = world.run(scenario())
    assert (first.answered_by, second.answered_by) == ("node", "node")
    assert new_pid != pid and code == 0
    assert group_members(new_pid) == set()
    assert any(line.startswith("En service : répartiteur SIP 127.0.0.1:") for line in lines)
