"""The node's one queue for Whisper: turns earliest deadline first, speculation only when idle.

One speech-engine process runs every conversation of the node, and on CPU each turn is a
full Whisper encoder pass over a 30 s window (about a second on 2 cores with Whisper base).
A thread per turn, as before, lets several runs share the cores so that every caller's
reply is late; here one ``AsrScheduler`` owns that work:

- Jobs wait in two queues. Real turns are served earliest ``deadline`` first; speculative
  ones (the utterance so far, at a pause) start only when a worker slot is free *and* no
  real turn waits, so they use idle capacity and never delay a turn by more than the run
  already in progress.
- A queued speculative job is dropped (``SpeculationDropped``) after
  ``speculative_max_wait_ms``, or as soon as a real turn takes the slot it waited for: by
  the time it could run, its turn is over. ``claim`` turns it into a real job when its
  turn ends first, so the turn keeps its place and is never dropped.
- ``parallel_jobs`` worker threads. With ``batch_max`` above 1 (a GPU by default), a free
  worker collects up to ``batch_max`` jobs, waiting ``batch_window_ms`` for the first one
  to get company, and transcribes them in one batched pass; on a GPU, rows a batch of
  turns leaves free carry speculative jobs, which cost almost nothing there.
- A cancelled caller's queued job leaves the queue at once. A running one cannot be
  stopped (CTranslate2 has no interruption): it finishes, holds its slot until then, and
  its result is dropped. A failure reaches only the job that caused it: a batch that
  raises is run again one utterance at a time.

All state lives on the event loop's thread; worker threads only run the transcriber and
hand their results back through the executor's future. ``stats`` may be read from any
thread. Nothing here sleeps: timers exist only for the batch window and the speculative
expiry.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import logging
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from asr.options import AsrOptions
from asr.transcriber import Transcript
from bot.audio import AudioFrame

log = logging.getLogger(__name__)

QUEUE_WAIT_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2000, 5000)
"""Upper bounds of the queue-wait histogram: from a real turn's arrival to its start."""
ASR_BUCKETS_MS = (100, 250, 500, 750, 1000, 1500, 2000, 3000, 5000, 10000)
"""Upper bounds of the transcription-time histogram (a batch's wall time, per job)."""
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64)
"""Upper bounds of the batch-size histogram, in utterances."""
_TIMER_SLACK_S = 0.001  # asyncio may run a timer up to its clock resolution early
_CLAIMABLE_DONE = 256  # finished speculations remembered for ``claim`` (a few per call)


def lower_priority(nice: int) -> None:
    """Lower the calling thread's priority (Linux: the nice value is per thread, and the
    threads CTranslate2 starts from here inherit it)."""
    if nice > 0:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)


class SpeculationDropped(Exception):
    """A speculative transcription was dropped without running: no transcript will come.

    Not an error: transcribe the finished turn as a real job instead.
    """

    def __init__(self, reason: str, label: str = ""):
        super().__init__(f"speculative transcription {label!r} dropped: {reason}")
        self.reason = reason
        """``expired`` (waited ``speculative_max_wait_ms``), ``preempted`` (a real turn
        took the slot) or ``closed`` (the scheduler is shutting down)."""


class AsrSchedulerClosed(RuntimeError):
    """The scheduler is closed: it takes no new job, and fails the real ones still queued."""


class SpeechToText(Protocol):
    """What the scheduler needs from a transcriber (``asr.transcriber.Transcriber``)."""

    @property
    def device(self) -> str: ...

    def transcribe(self, audio: AudioFrame, prompt: str | None = None) -> Transcript: ...

    def transcribe_batch(self, audios: Sequence[AudioFrame],
                         prompts: Sequence[str | None]) -> list[Transcript]: ...


@dataclass(frozen=True)
class Histogram:
    """Observations counted in fixed buckets, as Prometheus renders a histogram."""

    bounds: tuple[int, ...]
    """Upper bound of each bucket, ascending (ms, or utterances for batch sizes)."""
    cumulative: tuple[int, ...]
    """Observations at or below each bound (``_bucket{le=…}``); ``+Inf`` is ``count``."""
    count: int
    total: int
    """Sum of all observations (``_sum``), in the bounds' unit."""


class _Buckets:
    def __init__(self, bounds: tuple[int, ...]):
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)  # the last is +Inf
        self._total = 0

    def observe(self, value: int) -> None:
        self._counts[bisect.bisect_left(self.bounds, value)] += 1
        self._total += value

    def snapshot(self) -> Histogram:
        cumulative = tuple(itertools.accumulate(self._counts[:-1]))
        return Histogram(self.bounds, cumulative, sum(self._counts), self._total)


@dataclass(frozen=True)
class AsrStats:
    """The scheduler's state and counters since it started, for ``/metrics``."""

    queued_real: int
    """Turns waiting for a worker."""
    queued_speculative: int
    """Speculative jobs waiting for idle capacity."""
    running: int
    """Utterances being transcribed now, abandoned ones included (they cannot be stopped)."""
    done: int
    """Transcripts delivered to a waiting caller (turns and speculations)."""
    failed: int
    """Jobs whose transcription raised; the error went to that job's caller only."""
    cancelled: int
    """Jobs whose caller gave up: removed from the queue, or their result thrown away."""
    late: int
    """Turns whose transcript came after their deadline."""
    speculative_run: int
    """Speculative jobs that started (a claimed one counts when it had already started)."""
    speculative_dropped: int
    """Speculative jobs dropped without running (``SpeculationDropped``)."""
    speculative_used: int
    """Speculations a finished turn claimed (``claim``): the work that paid off."""
    batches: int
    """Batched passes run (``batch_max`` above 1 only)."""
    batch_size: Histogram
    """Utterances per batched pass."""
    queue_wait_ms: Histogram
    """From a turn's arrival (or its claim) to the start of its transcription."""
    asr_ms: Histogram
    """Wall time of the transcription (of its whole batch) for every job that ran."""


@dataclass(eq=False)
class _Job:
    audio: AudioFrame
    prompt: str | None
    deadline: float
    """``time.monotonic()`` instant by which the caller wants its reply."""
    speculative: bool
    label: str
    queued_at: float
    order: int
    """Arrival number: among equal deadlines, first come first served."""
    future: asyncio.Future[Transcript]
    expiry: asyncio.TimerHandle | None = None
    claimed: bool = False
    """A finished turn claimed it while it ran: its result is that turn's (``deadline``
    is the turn's now), and it is not kept for a later ``claim``."""

    @property
    def rank(self) -> tuple[float, int]:
        return (self.deadline, self.order)


@dataclass
class _Counters:
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    late: int = 0
    speculative_run: int = 0
    speculative_dropped: int = 0
    speculative_used: int = 0
    batches: int = 0
    batch_size: _Buckets = field(default_factory=lambda: _Buckets(BATCH_SIZE_BUCKETS))
    queue_wait_ms: _Buckets = field(default_factory=lambda: _Buckets(QUEUE_WAIT_BUCKETS_MS))
    asr_ms: _Buckets = field(default_factory=lambda: _Buckets(ASR_BUCKETS_MS))


_Outcome = Transcript | Exception


class AsrScheduler:
    """Runs every transcription of the node: one queue, fixed workers, optional batches.

    Create it once per speech-engine process, call its coroutines from one event loop,
    and ``close`` it at shut-down.
    """

    def __init__(self, transcriber: SpeechToText, options: AsrOptions):
        self._transcriber = transcriber
        self._slots = options.parallel_jobs
        self._batch_max = options.batch_size_for(transcriber.device)
        self._batched = self._batch_max > 1
        self._fill_with_speculative = self._batched and transcriber.device == "cuda"
        self._window_s = options.batch_window_ms / 1000
        self._max_wait_s = options.speculative_max_wait_ms / 1000
        self._executor = ThreadPoolExecutor(max_workers=self._slots, thread_name_prefix="asr",
                                            initializer=lower_priority,
                                            initargs=(options.thread_nice,))
        self._lock = threading.Lock()  # for stats() from other threads; all writers are on the loop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._real: list[_Job] = []
        self._speculative: list[_Job] = []
        self._busy_slots = 0
        self._running: set[_Job] = set()
        self._in_flight: set[asyncio.Future] = set()
        self._window_timer: asyncio.TimerHandle | None = None
        self._window_due: float | None = None
        self._finished_speculations: OrderedDict[int, weakref.ref[AudioFrame]] = OrderedDict()
        self._arrivals = itertools.count()
        self._counters = _Counters()
        self._closed = False

    @property
    def batch_max(self) -> int:
        """Most utterances per pass (``asr.batch_max`` with its automatic choice made)."""
        return self._batch_max

    # --- the API --------------------------------------------------------------------------
    async def transcribe(self, audio: AudioFrame, prompt: str | None, *, deadline: float,
                         speculative: bool = False, label: str = "") -> Transcript:
        """Transcribe ``audio`` when its turn comes; ``deadline`` is a ``time.monotonic()``
        instant by which the caller should have its reply (end of speech + a target).

        A speculative job may raise ``SpeculationDropped`` instead. Cancelling the awaiting
        task removes a queued job at once; a running one finishes and its result is lost.
        """
        loop = self._bind_loop()
        if self._closed:
            raise AsrSchedulerClosed("the ASR scheduler is closed")
        job = _Job(audio, prompt, deadline, speculative, label, time.monotonic(),
                   next(self._arrivals), loop.create_future())
        with self._lock:
            if speculative:
                self._speculative.append(job)
                job.expiry = loop.call_later(self._max_wait_s, self._expire, job)
            else:
                self._real.append(job)
        self._dispatch()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._abandon(job)
            raise

    def claim(self, audio: AudioFrame, *, deadline: float) -> bool:
        """The finished turn uses the speculation started on this very ``audio`` object.

        Still queued, it becomes a real job with ``deadline`` (served in order, never
        dropped). Returns False when no such speculation is pending or delivered (it was
        dropped, or never submitted): transcribe the turn as a real job. Counts
        ``speculative_used`` when True.
        """
        self._bind_loop()
        with self._lock:
            job = next((j for j in self._speculative if j.audio is audio), None)
            if job is not None:
                self._speculative.remove(job)
                self._cancel_expiry(job)
                job.speculative = False
                job.deadline = deadline
                job.queued_at = time.monotonic()  # its wait as a turn starts now
                self._real.append(job)
            else:
                job = next((j for j in self._running if j.speculative and j.audio is audio),
                           None)
                if job is None and not self._forget_finished(audio):
                    return False
                if job is not None:
                    job.claimed = True
                    job.deadline = deadline
            self._counters.speculative_used += 1
        self._dispatch()
        return True

    def stats(self) -> AsrStats:
        """A consistent snapshot of the queues and counters (callable from any thread)."""
        with self._lock:
            c = self._counters
            return AsrStats(
                queued_real=len(self._real), queued_speculative=len(self._speculative),
                running=len(self._running), done=c.done, failed=c.failed,
                cancelled=c.cancelled, late=c.late, speculative_run=c.speculative_run,
                speculative_dropped=c.speculative_dropped,
                speculative_used=c.speculative_used, batches=c.batches,
                batch_size=c.batch_size.snapshot(), queue_wait_ms=c.queue_wait_ms.snapshot(),
                asr_ms=c.asr_ms.snapshot())

    async def close(self) -> None:
        """Take no more jobs, fail the queued ones, let the running ones finish."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            if self._window_timer:
                self._window_timer.cancel()
            for job in self._real:
                if not job.future.done():
                    job.future.set_exception(AsrSchedulerClosed("the ASR scheduler closed"))
            self._real.clear()
            self._drop_speculative("closed")
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        self._executor.shutdown(wait=False)  # every worker is idle by now

    # --- queue changes (all on the loop) --------------------------------------------------
    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("AsrScheduler is used from two event loops")
        return loop

    def _abandon(self, job: _Job) -> None:
        """The caller gave up: a queued job leaves now; a running one is dropped at its end."""
        with self._lock:
            queue = self._speculative if job in self._speculative else self._real
            if job in queue:
                queue.remove(job)
                self._cancel_expiry(job)
                self._counters.cancelled += 1
                log.debug("ASR job %r cancelled while queued", job.label)
        self._dispatch()

    def _expire(self, job: _Job) -> None:
        with self._lock:
            job.expiry = None
            if job in self._speculative:
                self._speculative.remove(job)
                self._drop(job, "expired")
        self._dispatch()

    def _drop_speculative(self, reason: str) -> None:
        for job in self._speculative:
            self._cancel_expiry(job)
            self._drop(job, reason)
        self._speculative.clear()

    def _drop(self, job: _Job, reason: str) -> None:
        self._counters.speculative_dropped += 1
        if not job.future.done():
            job.future.set_exception(SpeculationDropped(reason, job.label))
        log.debug("speculative ASR job %r dropped: %s", job.label, reason)

    @staticmethod
    def _cancel_expiry(job: _Job) -> None:
        if job.expiry is not None:
            job.expiry.cancel()
            job.expiry = None

    def _dispatch(self) -> None:
        """Start whatever may start now; arm the batch window for what must wait."""
        if self._closed or self._loop is None:
            return
        with self._lock:
            while self._busy_slots < self._slots:
                jobs = self._take(time.monotonic())
                if not jobs:
                    break
                self._start(jobs)
            self._arm_window()

    def _take(self, now: float) -> list[_Job]:
        """The next jobs for a free worker: turns first, by deadline; speculation if idle."""
        if not self._real and not self._speculative:
            return []
        if self._batched and not self._batch_ready(now):
            return []
        real = _pop_earliest(self._real, self._batch_max)
        if real:
            if self._fill_with_speculative:
                return real + _pop_earliest(self._speculative, self._batch_max - len(real))
            self._drop_speculative("preempted")
            return real
        return _pop_earliest(self._speculative, self._batch_max)

    def _batch_ready(self, now: float) -> bool:
        """Full, or the first waiting job has had its window."""
        waiting = len(self._real)
        if self._fill_with_speculative or not self._real:
            waiting += len(self._speculative)
        return (waiting >= self._batch_max
                or now + _TIMER_SLACK_S >= self._oldest_arrival() + self._window_s)

    def _oldest_arrival(self) -> float:
        return min(j.queued_at for j in itertools.chain(self._real, self._speculative))

    def _arm_window(self) -> None:
        due = None
        if self._batched and self._busy_slots < self._slots and (self._real or self._speculative):
            due = self._oldest_arrival() + self._window_s
        if due == self._window_due:
            return
        if self._window_timer:
            self._window_timer.cancel()
            self._window_timer = None
        self._window_due = due
        if due is not None:
            delay = max(0.0, due - time.monotonic())
            self._window_timer = self._loop.call_later(delay, self._window_elapsed)

    def _window_elapsed(self) -> None:
        self._window_timer = None
        self._window_due = None
        self._dispatch()

    # --- running ------------------------------------------------------------------------
    def _start(self, jobs: list[_Job]) -> None:
        started = time.monotonic()
        for job in jobs:
            self._cancel_expiry(job)
            if job.speculative:
                self._counters.speculative_run += 1
            else:
                self._counters.queue_wait_ms.observe(round((started - job.queued_at) * 1000))
        if self._batched:
            self._counters.batches += 1
            self._counters.batch_size.observe(len(jobs))
        self._busy_slots += 1
        self._running.update(jobs)
        work = [(job.audio, job.prompt) for job in jobs]
        future = self._loop.run_in_executor(self._executor, self._run, work)
        self._in_flight.add(future)
        future.add_done_callback(lambda done: self._finished(jobs, done))
        log.debug("ASR start %s", ", ".join(
            f"{job.label!r}{' (speculative)' if job.speculative else ''}" for job in jobs))

    def _run(self, work: list[tuple[AudioFrame, str | None]]) -> tuple[list[_Outcome], int]:
        """In a worker thread: transcribe, one at a time or as a batch; errors as values."""
        started = time.monotonic()
        outcomes: list[_Outcome]
        if not self._batched:
            outcomes = [_attempt(lambda: self._transcriber.transcribe(*work[0]))]
        else:
            audios = [audio for audio, _ in work]
            prompts = [prompt for _, prompt in work]
            try:
                outcomes = list(self._transcriber.transcribe_batch(audios, prompts))
            except Exception as error:  # noqa: BLE001 - re-run alone to find whose it is
                if len(work) == 1:
                    outcomes = [error]
                else:
                    outcomes = [_attempt(lambda a=a, p=p: self._transcriber.transcribe_batch(
                        [a], [p])[0]) for a, p in work]
        return outcomes, round((time.monotonic() - started) * 1000)

    def _finished(self, jobs: list[_Job], done: asyncio.Future) -> None:
        """Back on the loop: hand each result to its caller, unless it gave up."""
        self._in_flight.discard(done)
        try:
            outcomes, asr_ms = done.result()
        except BaseException as error:  # noqa: BLE001 - a bug in _run: every job gets it
            outcomes, asr_ms = [error] * len(jobs), 0
        now = time.monotonic()
        with self._lock:
            self._busy_slots -= 1
            self._running.difference_update(jobs)
            for job, outcome in zip(jobs, outcomes, strict=True):
                self._counters.asr_ms.observe(asr_ms)
                if job.future.done():  # the caller was cancelled while it ran
                    self._counters.cancelled += 1
                    log.debug("ASR job %r finished after its caller left: result dropped",
                              job.label)
                elif isinstance(outcome, BaseException):
                    self._counters.failed += 1
                    job.future.set_exception(outcome)
                else:
                    self._counters.done += 1
                    if (not job.speculative or job.claimed) and now > job.deadline:
                        self._counters.late += 1
                    if job.speculative and not job.claimed:
                        self._remember_finished(job.audio)
                    job.future.set_result(outcome)
        self._dispatch()

    # --- speculations a turn may claim after they ran -------------------------------------
    def _remember_finished(self, audio: AudioFrame) -> None:
        self._finished_speculations[id(audio)] = weakref.ref(audio)
        while len(self._finished_speculations) > _CLAIMABLE_DONE:
            self._finished_speculations.popitem(last=False)

    def _forget_finished(self, audio: AudioFrame) -> bool:
        ref = self._finished_speculations.get(id(audio))
        if ref is None or ref() is not audio:
            return False
        del self._finished_speculations[id(audio)]
        return True


def _pop_earliest(queue: list[_Job], count: int) -> list[_Job]:
    """Remove and return the ``count`` jobs with the earliest deadlines."""
    if count <= 0 or not queue:
        return []
    chosen = sorted(queue, key=lambda job: job.rank)[:count]
    for job in chosen:
        queue.remove(job)
    return chosen


def _attempt(transcribe) -> _Outcome:
    try:
        return transcribe()
    except Exception as error:  # noqa: BLE001 - delivered to the job's caller
        return error
