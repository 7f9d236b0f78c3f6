"""The node's ASR scheduler with the real Whisper base model: order, speculation, batches.

Every job goes through the real transcriber. A recorded sentence keeps a worker busy for
about a second (one 30 s encoder pass); a second of silence is turned away by the Silero
gate in milliseconds, so it makes a cheap job whose only role is its place in the order.
With one worker, jobs finish in the order they start, which is what the order tests read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable

import pytest
from asr_signals import french, silence

from asr.options import AsrOptions
from asr.prompt import build_prompt
from asr.scheduler import AsrScheduler, AsrSchedulerClosed, SpeculationDropped
from asr.transcriber import Transcript
from bot.audio import AudioFrame, read_wav
from bot.errors import SettingsError
from bot.settings import PROJECT_ROOT

TELEPHONY = PROJECT_ROOT / "tests" / "data" / "telephony"
SENTENCE = "votre message est trop court."  # what Whisper base hears in vm-tooshort
PROMPT = build_prompt(["prime d'activité", "RSA", "Mon Compte", "FranceConnect"])


@pytest.fixture(scope="module")
def transcriber(transcriber):
    """Whisper's own 30 s window, whose exact outputs these tests name: the scheduling does
    not depend on the window (test_short_windows_batch_like_single_runs covers the other)."""
    return transcriber.with_options(dataclasses.replace(transcriber.options, window_pad_s=0))


def scheduler(transcriber, **options) -> AsrScheduler:
    """A scheduler whose speculations never expire unless a test says so: a busy machine
    may take longer than the default second over a sentence."""
    options.setdefault("speculative_max_wait_ms", 600_000)
    return AsrScheduler(transcriber, dataclasses.replace(AsrOptions(), **options))


async def all_started() -> None:
    """Return once the tasks created before this call have reached their first ``await``.

    asyncio runs new tasks in the order they were created, so a task created now runs
    after them; ``AsrScheduler.transcribe`` queues its job before its first ``await``.
    """
    await asyncio.create_task(_nothing())


async def _nothing() -> None:
    pass


class Finishing:
    """Records the order in which awaited jobs end (with one worker: the order they ran)."""

    def __init__(self):
        self.order: list[str] = []

    async def __call__(self, label: str, job: Awaitable[Transcript]) -> Transcript | str:
        try:
            transcript = await job
        except SpeculationDropped as dropped:
            self.order.append(f"{label} dropped ({dropped.reason})")
            return dropped.reason
        self.order.append(label)
        return transcript


def soon(seconds: float = 1.0) -> float:
    return time.monotonic() + seconds


# --- batches give the same transcripts as one at a time ------------------------------------

def test_a_batch_gives_each_utterance_the_transcript_it_gets_alone(transcriber):
    audios = [french("vm-tooshort"), read_wav(TELEPHONY / "advisor_request_8k.wav"),
              silence(2), read_wav(TELEPHONY / "caller_question_16k.wav")]
    prompts = [PROMPT, PROMPT, PROMPT, None]  # two prompt lengths: two passes
    alone = [transcriber.transcribe(a, p) for a, p in zip(audios, prompts, strict=True)]
    together = transcriber.transcribe_batch(audios, prompts)
    assert [t.text for t in together] == [
        "Votre message est trop court.", "On attendre pour parler à un préposé.", "",
        "Où? Enblier mon mot de passe."]
    assert [without_time(t) for t in together] == [without_time(t) for t in alone]
    assert together[2].rejected == "silence"


def test_short_windows_batch_like_single_runs(transcriber):
    """The CPU default encodes the speech plus 10 s, not 30 s: utterances of different
    lengths then have different windows, batched in separate passes, each as alone."""
    short = transcriber.with_options(dataclasses.replace(transcriber.options, window_pad_s=10))
    audios = [french("vm-tooshort"), read_wav(TELEPHONY / "advisor_request_8k.wav"),
              french("followme_status")]
    alone = [short.transcribe(a, PROMPT) for a in audios]
    together = short.transcribe_batch(audios, [PROMPT] * 3)
    assert [without_time(t) for t in together] == [without_time(t) for t in alone]
    assert [words(together[i].text)[:3] for i in (0, 2)] == [  # as the references begin
        ["votre", "message", "est"], ["la", "personne", "que"]]


def words(text: str) -> list[str]:
    return text.casefold().replace(".", "").replace(",", "").split()


def test_an_utterance_that_reaches_its_token_budget_is_decoded_as_alone(transcriber):
    # 3 tokens/s: the 5.5 s sentence is cut by its budget, the 1.9 s one is not; the batch
    # decodes with the larger budget, so the cut one must come out as it does alone
    stingy = transcriber.with_options(dataclasses.replace(transcriber.options,
                                                          max_tokens_per_second=3.0))
    audios = [french("vm-tooshort"), french("followme_status")]
    alone = [stingy.transcribe(a, PROMPT) for a in audios]
    assert alone[1].text == (
        "La personne que vous déséjouindre n'est pas à son bureau, je vais essayer de la "
        "localiser pour")
    together = stingy.transcribe_batch(audios, [PROMPT, PROMPT])
    assert [without_time(t) for t in together] == [without_time(t) for t in alone]


def without_time(transcript: Transcript) -> Transcript:
    return dataclasses.replace(transcript, asr_ms=0)


# --- order --------------------------------------------------------------------------------

def test_turns_are_served_earliest_deadline_first(transcriber):
    asr = scheduler(transcriber)
    finished = Finishing()

    async def scenario():
        jobs = [
            finished("busy", asr.transcribe(french("vm-tooshort"), None, deadline=soon(1))),
            finished("late", asr.transcribe(silence(1), None, deadline=soon(9))),
            finished("early", asr.transcribe(silence(1), None, deadline=soon(5))),
        ]
        await asyncio.gather(*jobs)
        await asr.close()

    asyncio.run(scenario())
    assert finished.order == ["busy", "early", "late"]
    assert asr.stats().queue_wait_ms.count == 3


def test_a_speculation_runs_at_once_on_an_idle_node_and_after_the_running_turn(transcriber):
    asr = scheduler(transcriber)
    finished = Finishing()

    async def scenario():
        idle = await asr.transcribe(silence(1), None, deadline=soon(), speculative=True)
        assert idle.rejected == "silence"
        await asyncio.gather(
            finished("turn", asr.transcribe(french("vm-tooshort"), None, deadline=soon())),
            finished("speculation", asr.transcribe(silence(1), None, deadline=soon(),
                                                   speculative=True)))
        await asr.close()

    asyncio.run(scenario())
    assert finished.order == ["turn", "speculation"]
    stats = asr.stats()
    assert (stats.speculative_run, stats.speculative_dropped, stats.done) == (2, 0, 3)


def test_a_waiting_turn_goes_before_a_speculation_with_an_earlier_deadline(transcriber):
    asr = scheduler(transcriber)
    finished = Finishing()

    async def scenario():
        await asyncio.gather(
            finished("turn 1", asr.transcribe(french("vm-tooshort"), None, deadline=soon(1))),
            finished("speculation", asr.transcribe(silence(1), None, deadline=soon(0),
                                                   speculative=True)),
            finished("turn 2", asr.transcribe(silence(1), None, deadline=soon(9))))
        await asr.close()

    asyncio.run(scenario())
    # the slot went to turn 2: the speculation could only have run after it, too late
    assert finished.order == ["turn 1", "speculation dropped (preempted)", "turn 2"]
    assert asr.stats().speculative_dropped == 1


def test_a_speculation_that_waited_its_window_is_dropped(transcriber):
    asr = scheduler(transcriber, speculative_max_wait_ms=20)

    async def scenario():
        busy = asyncio.create_task(asr.transcribe(french("vm-tooshort"), None, deadline=soon()))
        await all_started()
        with pytest.raises(SpeculationDropped) as dropped:
            await asr.transcribe(silence(1), None, deadline=soon(), speculative=True)
        assert dropped.value.reason == "expired"
        assert asr.stats().running == 1  # dropped while the turn still runs (about 1 s)
        assert (await busy).text == SENTENCE
        await asr.close()

    asyncio.run(scenario())


def test_no_stream_of_speculations_can_starve_a_turn(transcriber):
    """Speculations keep coming, three always pending, each with an earlier deadline than
    the turn: plain earliest-deadline-first would serve them forever. The turn may only
    wait for the speculation already running when it arrived."""
    asr = scheduler(transcriber)
    events: list[str] = []

    async def speculate(remaining: list[int], warmed_up: asyncio.Event) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            try:
                await asr.transcribe(silence(1), None, deadline=time.monotonic(),
                                     speculative=True)
                events.append("speculation ran")
                if events.count("speculation ran") == 5:
                    warmed_up.set()
            except SpeculationDropped:
                events.append("speculation dropped")

    async def scenario():
        remaining = [150]
        warmed_up = asyncio.Event()
        spammers = [asyncio.create_task(speculate(remaining, warmed_up)) for _ in range(3)]
        await warmed_up.wait()
        events.append("turn queued")
        turn = await asr.transcribe(french("vm-tooshort"), None, deadline=soon(10))
        events.append("turn done")
        remaining[0] = 0
        await asyncio.gather(*spammers)
        await asr.close()
        return turn

    assert asyncio.run(scenario()).text == SENTENCE
    waited = events[events.index("turn queued"):events.index("turn done")]
    assert waited.count("speculation ran") <= 1
    assert "speculation ran" in events[events.index("turn done"):]  # and they went on after


def test_a_claimed_speculation_becomes_a_turn_with_its_deadline(transcriber):
    asr = scheduler(transcriber)
    finished = Finishing()
    pause = silence(1)

    async def scenario():
        jobs = [
            asyncio.create_task(finished("turn A", asr.transcribe(
                french("vm-tooshort"), None, deadline=soon(1)))),
            asyncio.create_task(finished("speculation B", asr.transcribe(
                pause, None, deadline=soon(5), speculative=True))),
            asyncio.create_task(finished("turn C", asr.transcribe(
                silence(1), None, deadline=soon(3)))),
        ]
        await all_started()
        assert asr.claim(pause, deadline=soon(2))  # B's turn ended: it is a turn now
        await asyncio.gather(*jobs)
        await asr.close()

    asyncio.run(scenario())
    assert finished.order == ["turn A", "speculation B", "turn C"]  # claimed: not preempted
    stats = asr.stats()
    assert (stats.speculative_used, stats.speculative_dropped) == (1, 0)


def test_a_finished_speculation_can_be_claimed_once_and_an_unknown_one_not_at_all(transcriber):
    asr = scheduler(transcriber)
    pause = silence(1)

    async def scenario():
        await asr.transcribe(pause, None, deadline=soon(), speculative=True)
        claims = [asr.claim(pause, deadline=soon()), asr.claim(pause, deadline=soon()),
                  asr.claim(silence(1), deadline=soon())]
        await asr.close()
        return claims

    assert asyncio.run(scenario()) == [True, False, False]
    assert asr.stats().speculative_used == 1


def test_a_running_speculation_claimed_by_its_turn_delivers_the_turn_transcript(transcriber):
    asr = scheduler(transcriber)
    pause = french("vm-tooshort")

    async def scenario():
        speculation = asyncio.create_task(asr.transcribe(pause, None, deadline=soon(),
                                                         speculative=True))
        await all_started()
        assert asr.stats().running == 1
        assert asr.claim(pause, deadline=soon(60))
        transcript = await speculation
        again = asr.claim(pause, deadline=soon())  # used once, not twice
        await asr.close()
        return transcript, again

    transcript, again = asyncio.run(scenario())
    assert (transcript.text, again) == (SENTENCE, False)
    stats = asr.stats()
    assert (stats.speculative_run, stats.speculative_used, stats.late) == (1, 1, 0)


# --- cancellation and errors ------------------------------------------------------------

def test_cancelling_a_queued_job_removes_it_at_once(transcriber):
    asr = scheduler(transcriber)

    async def scenario():
        busy = asyncio.create_task(asr.transcribe(french("vm-tooshort"), None, deadline=soon()))
        queued = asyncio.create_task(asr.transcribe(silence(1), None, deadline=soon()))
        await all_started()
        assert asr.stats().queued_real == 1
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        stats = asr.stats()
        assert (stats.queued_real, stats.running, stats.cancelled) == (0, 1, 1)
        assert (await busy).text == SENTENCE
        await asr.close()

    asyncio.run(scenario())
    assert asr.stats().done == 1


def test_a_cancelled_running_job_finishes_unseen_and_frees_its_worker(transcriber, caplog):
    asr = scheduler(transcriber)

    async def scenario():
        running = asyncio.create_task(asr.transcribe(french("vm-tooshort"), None,
                                                     deadline=soon()))
        await all_started()
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        assert asr.stats().running == 1  # CTranslate2 cannot be interrupted
        after = await asr.transcribe(silence(1), None, deadline=soon())  # runs after it
        await asr.close()
        return after

    assert asyncio.run(scenario()).rejected == "silence"
    stats = asr.stats()
    assert (stats.running, stats.cancelled, stats.done, stats.asr_ms.count) == (0, 1, 1, 2)
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # nothing left unread


@pytest.mark.parametrize("batch_max", [1, 4])
def test_a_failing_job_fails_alone(transcriber, batch_max):
    asr = scheduler(transcriber, batch_max=batch_max)
    torn = AudioFrame(bytes(3201), 8000)  # half a sample at the end: a real decoding error

    async def scenario():
        return await asyncio.gather(
            asr.transcribe(french("vm-tooshort"), None, deadline=soon()),
            asr.transcribe(torn, None, deadline=soon()),
            asr.transcribe(silence(1), None, deadline=soon()),
            return_exceptions=True)

    good, broken, quiet = asyncio.run(scenario())
    assert good.text == SENTENCE
    assert isinstance(broken, ValueError)
    assert quiet.rejected == "silence"
    stats = asr.stats()
    assert (stats.done, stats.failed, stats.batches) == (2, 1, 1 if batch_max > 1 else 0)


def test_closing_fails_queued_jobs_and_lets_the_running_one_finish(transcriber):
    asr = scheduler(transcriber)

    async def scenario():
        jobs = [asyncio.create_task(asr.transcribe(french("vm-tooshort"), None,
                                                   deadline=soon())),
                asyncio.create_task(asr.transcribe(silence(1), None, deadline=soon())),
                asyncio.create_task(asr.transcribe(silence(1), None, deadline=soon(),
                                                   speculative=True))]
        await all_started()
        await asr.close()
        with pytest.raises(AsrSchedulerClosed):
            await asr.transcribe(silence(1), None, deadline=soon())
        return await asyncio.gather(*jobs, return_exceptions=True)

    running, queued, speculation = asyncio.run(scenario())
    assert running.text == SENTENCE
    assert isinstance(queued, AsrSchedulerClosed)
    assert isinstance(speculation, SpeculationDropped) and speculation.reason == "closed"


# --- batches through the scheduler --------------------------------------------------------

def test_simultaneous_turns_share_one_batch_and_are_counted(transcriber):
    asr = scheduler(transcriber, batch_max=4, batch_window_ms=10_000)

    async def scenario():
        transcripts = await asyncio.gather(*(
            asr.transcribe(audio, PROMPT, deadline=soon(), label=f"call {n}")
            for n, audio in enumerate([french("vm-tooshort"), silence(1), silence(2),
                                       french("conf-now-unmuted")])))
        await asr.close()
        return [t.text for t in transcripts]

    # the window is 10 s, but a full batch does not wait for it
    assert asyncio.run(scenario()) == [
        "Votre message est trop court.", "", "", "La conférence n'est plus en mode discret."]
    stats = asr.stats()
    assert (stats.batches, stats.batch_size.count, stats.batch_size.total) == (1, 1, 4)
    assert stats.batch_size.cumulative == (0, 0, 1, 1, 1, 1, 1)  # le=1, 2, 4, 8…
    assert (stats.done, stats.queue_wait_ms.count, stats.asr_ms.count) == (4, 4, 4)
    assert stats.asr_ms.cumulative[-1] == 4  # every one took under 10 s


class ReportsCuda:
    """The real transcriber, said to run on a GPU: the batch policy differs there, and CI
    has no GPU. Transcription itself is the real CPU one."""

    device = "cuda"

    def __init__(self, transcriber):
        self.transcribe = transcriber.transcribe
        self.transcribe_batch = transcriber.transcribe_batch


@pytest.mark.parametrize("on_gpu", [False, True], ids=["cpu", "gpu"])
def test_speculations_ride_along_with_turns_only_on_a_gpu(transcriber, on_gpu):
    engine = ReportsCuda(transcriber) if on_gpu else transcriber
    asr = scheduler(engine, batch_max=None if on_gpu else 4)
    assert asr.batch_max == (32 if on_gpu else 4)
    finished = Finishing()

    async def scenario():
        await asyncio.gather(
            finished("turn", asr.transcribe(french("vm-tooshort"), None, deadline=soon())),
            finished("speculation", asr.transcribe(silence(1), None, deadline=soon(),
                                                   speculative=True)))
        await asr.close()

    asyncio.run(scenario())
    if on_gpu:
        assert sorted(finished.order) == ["speculation", "turn"]
        assert asr.stats().batch_size.total == 2  # one batch: the turn and the speculation
    else:
        assert finished.order == ["speculation dropped (preempted)", "turn"]
        assert asr.stats().batch_size.total == 1


# --- options ------------------------------------------------------------------------------

def test_batch_size_is_chosen_by_device_unless_set():
    assert AsrOptions().batch_size_for("cpu") == 1
    assert AsrOptions().batch_size_for("cuda") == 32
    assert AsrOptions(batch_max=4).batch_size_for("cuda") == 4


def test_impossible_scheduler_settings_are_refused_in_french():
    with pytest.raises(SettingsError, match="asr.parallel_jobs vaut 0 : il faut un entier "
                                            "supérieur ou égal à 1."):
        AsrOptions(parallel_jobs=0)
    with pytest.raises(SettingsError, match="asr.batch_max vaut 0"):
        AsrOptions(batch_max=0)
