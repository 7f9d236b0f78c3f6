"""Two nodes behind one front balancer, one shared PostgreSQL ledger, on loopback.

The deployment of docs/deploy.md, made real: ``voicebot balancer`` (Kamailio, the first hop
from the operator) spreads calls over two ``voicebot serve`` nodes whose own Kamailio is not
the edge. One node's speech engine is killed mid-call: its caller hears the apology and
reaches an advisor, and new calls go to the other node. Then the other node is drained:
its call finishes, new calls move back to the first one. Every finished call is in the
ledger exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import uuid

import pytest
from audio_match import match, middle, padded
from baresip_phone import free_port
from node_service import VOICEBOT, NodeService, start_node
from processes import stop_process
from throwaway_pg import PostgresMissingError, ThrowawayPostgres

from bot.audio import AudioFrame, read_wav
from bot.settings import PROJECT_ROOT, Settings
from tts.fallback import FallbackAudio
from tts.speaker import Speaker

DATA = PROJECT_ROOT / "tests" / "data" / "telephony"
SAME_AUDIO = 0.85


class Balancer:
    def __init__(self, sip_port: int, nodes: list[NodeService], env: dict[str, str],
                 runtime_dir):
        self.sip_port = sip_port
        self.log: list[str] = []
        self.ready = threading.Event()
        args = [str(VOICEBOT), "balancer", "--sip-port", str(sip_port), "--runtime-dir",
                str(runtime_dir), "--probe-interval", "1"]
        for node in nodes:
            args += ["--node", f"127.0.0.1:{node.sip_port}"]
        self.process = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True, start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.log.append(line.rstrip())
            if "En service" in line:
                self.ready.set()

    @property
    def uri(self) -> str:
        return f"sip:3230@127.0.0.1:{self.sip_port}"

    def stop(self) -> None:
        stop_process(self.process, 20)


@pytest.fixture(scope="module")
def cluster(published_settings: Settings, tmp_path_factory: pytest.TempPathFactory):
    try:
        postgres = ThrowawayPostgres()
    except PostgresMissingError as exc:
        pytest.fail(str(exc), pytrace=False)
    advisor_port = free_port()
    nodes: list[NodeService] = []
    balancer = None
    with postgres:
        db = {"VOICEBOT_DB_URL": postgres.create_database(f"n_{uuid.uuid4().hex[:8]}"),
              "VOICEBOT_NODE_EDGE": "false"}
        try:
            for name in ("a", "b"):  # one after the other: they must not pick the same ports
                nodes.append(start_node(published_settings, tmp_path_factory.mktemp(name),
                                        workers=2, max_calls=4, extra_env=db,
                                        advisor_port=advisor_port, wait=False))
                if not nodes[-1].ready.wait(300):
                    raise AssertionError("node did not start:\n" + "\n".join(nodes[-1].log[-40:]))
            balancer = Balancer(free_port(), nodes, nodes[0].env,
                                tmp_path_factory.mktemp("front"))
            if not balancer.ready.wait(30):
                raise AssertionError("balancer did not start:\n" + "\n".join(balancer.log))
            yield balancer, nodes
        finally:
            if os.environ.get("SERVICE_LOG"):
                for node in nodes:
                    print("\n".join(node.log))
                if balancer is not None:
                    print("\n".join(balancer.log))
            if balancer is not None:
                balancer.stop()
            for node in nodes:
                node.stop(30)


def silence(world, name: str, seconds: float):
    return world.wav(name, AudioFrame(b"\0" * int(seconds * 8000) * 2, 8000))


def test_two_nodes_one_engine_killed_the_other_drained_every_call_billed_once(
        world, cluster, published_settings):
    balancer, (a, b) = cluster
    speaker = Speaker.load(published_settings)
    from bot.kb.store import KbStore

    messages = KbStore(published_settings.paths.state_dir).current().kb.messages
    greeting = speaker.cached(messages["greeting"])
    apology = FallbackAudio(published_settings.paths.state_dir).audio("error_apology")
    call_s = greeting.duration_ms / 1000 + 3
    placed: list[str] = []

    async def call(name: str, seconds: float):
        phone = await world.phone(name, source=silence(world, f"{name}.wav", seconds))
        await phone.command("dial", balancer.uri)
        event = await phone.wait_event("CALL_ESTABLISHED", "CALL_CLOSED", timeout_s=20)
        assert event["type"] == "CALL_ESTABLISHED", (name, event.get("param"))
        placed.append(event["id"])
        return phone

    async def on(node: NodeService) -> bool:
        """Whether ``node`` holds a call (workers report their count every second)."""
        try:
            await node.wait_health(lambda h: h["calls_in_progress"] > 0, 2.5, "a call")
        except AssertionError:
            return False
        return True

    async def scenario():
        wav = world.wav("advisor.wav", padded(read_wav(DATA / "bot_greeting_8k.wav"), 0.2, 90))
        advisor = await world.phone("conseiller", source=wav, answermode="auto",
                                    sip_port=a.advisor_port)
        # 1. Calls spread over both nodes.
        first, second = await call("first", call_s), await call("second", call_s)
        spread = (await on(a), await on(b))
        for phone in (first, second):
            await phone.wait_event("CALL_CLOSED", timeout_s=call_s + 20)

        # 2. Node A's engine is killed mid-call.
        victim = await call("victim", 60)
        target = a if await on(a) else b
        other = b if target is a else a
        engine_pid = (await target.wait_health(lambda h: True, 5, "health"))["engine"]["pid"]
        await asyncio.sleep(2.0)  # mid-greeting
        os.kill(engine_pid, signal.SIGKILL)
        rescued = await advisor.wait_event("CALL_ESTABLISHED", timeout_s=20)
        moved = [await call(f"moved{i}", call_s) for i in range(2)]
        moved_to_other = [await on(other), not await on(target)]
        for phone in moved:
            await phone.wait_event("CALL_CLOSED", timeout_s=call_s + 20)

        # 3. The other node is drained while it holds a call; new calls go to the first node
        # once its engine is back.
        await target.wait_health(lambda h: h["status"] == "ok", 240, "the engine restarted")
        staying = await call("staying", call_s)
        assert await on(other)
        other.process.send_signal(signal.SIGTERM)
        await other.wait_health(lambda h: h["draining"], 10, "the drain")
        after = await call("after", call_s)
        after_on_target = await on(target)
        closed = await staying.wait_event("CALL_CLOSED", timeout_s=call_s + 20)
        await after.wait_event("CALL_CLOSED", timeout_s=call_s + 20)
        code = await asyncio.to_thread(other.process.wait, 60)
        rows = await asyncio.to_thread(target.ledger_rows)
        for phone in (first, second, victim, *moved, staying, after, advisor):
            await phone.stop()
        return spread, rescued, victim, moved_to_other, closed, after_on_target, code, rows, \
            staying

    spread, rescued, victim, moved_to_other, closed, after_on_target, code, rows, staying = \
        world.run(scenario(), 500)
    assert spread == (True, True), "the balancer sent both calls to the same node"
    assert "victim@127.0.0.1" in rescued["peeruri"]
    assert match(middle(apology), victim.received_audio(0))[0] > SAME_AUDIO
    assert moved_to_other == [True, True]
    assert closed["param"] == "end of file"  # the drained node let its caller finish
    assert match(greeting, staying.received_audio(0))[0] > SAME_AUDIO
    assert after_on_target
    assert code == 0
    assert sorted(rows) == sorted(placed), "every call once in the shared ledger"
