"""Reply time as the caller's phone lived it, read from baresip's two audio dumps.

A caller phone (baresip with its ``sndfile`` filter) writes what it sends to
``dump-…-enc.wav``, each 20 ms frame as it is encoded and put on the wire, and what it
receives to ``dump-…-dec.wav``, each packet as it is decoded. The callers run without a
jitter buffer (``jitter_buffer_delay 0-0``, nothing to smooth on loopback), so a packet is
decoded, and written, as it arrives.

**Each dump has its own clock.** libsndfile writes every frame straight to the file (no
user-space buffering), so the size of a dump, sampled every ~20 ms while the call runs
(``DumpClock``), says when each of its samples was written: sample ``p`` was written in
``(s[i-1], s[i]]``, ``s[i]`` being the first sampling instant at which the file held more
than ``p`` samples. Nothing assumes that the two dumps start together, or that the bot
sends RTP through its silences: a gap in the received stream is a gap in time, not in
sample positions.

**A turn's reply time** is then: when the first loud frame after the question arrived
(dec clock) − when the frame holding the question's last loud sample was sent (enc clock).
"Loud" is a 20 ms frame whose RMS is at least ``LOUD_DBFS`` (−40 dBFS), 30 dB or more
above what the phones receive between the bot's messages (G.711 digital silence decodes
to 0; the floor actually received is measured and reported per turn). The question's end
is known from the script (the last loud frame of its recording) and found again in the enc
dump, which must agree to the frame. A turn is not measured (said why) when the bot was
still speaking as the question ended, or had said nothing since the previous question
ended (that reply was still to come). Accuracy: the two clocks' sampling intervals around
those frames (each ~20 ms wide; the half-sum is reported per turn as ``± ms``), plus the
detector's bias on a fade (at most a frame: both the recordings and the bot's pre-rendered
audio start and stop sharply).

**Cross-checks, per turn.** (1) ``by_position_ms``: the same figure read as if both dumps
started together (sample positions only); its difference from the clocked figure is the
offset between the dumps' starts plus any stall of the received stream before the reply
(a node that stops sending RTP for a while). (2) The engine's INFO line for the turn is stamped when
the benchmark reads it (within a millisecond of being written, as the reply's first audio
is ready); with its ``response`` figure it splits the phone-side figure into
``uplink`` (question's end sent → the engine's end of speech, i.e. its VAD's estimate of it
plus transport and its jitter buffer) + ``response`` (in service) + ``downlink`` (reply
ready → first loud packet at the phone). On loopback both are tens of ms, give or take
the engine's VAD placing the end of speech a frame or two either side of the −40 dBFS
end; a large negative value means a clock is wrong, a large uplink that the engine's
audio processing ran behind the line (time its own ``response`` figure does not see).
"""

from __future__ import annotations

import bisect
import math
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bot.audio import AudioFrame, read_wav

FRAME_MS = 20
LOUD_DBFS = -40.0
"""A frame at least this loud (RMS, dB relative to full scale) is speech or the bot."""
QUIET_BEFORE_MS = 200
"""The bot must have been silent this long before the question's end for the next loud
frame to be a reply onset (otherwise its previous message was still playing)."""
MAX_REPLY_S = 30.0
"""A reply that starts later than this after the question is counted as none."""


def frame_dbfs(audio: AudioFrame) -> np.ndarray:
    """RMS of each whole 20 ms frame, in dBFS (−120 for digital silence)."""
    size = audio.sample_rate * FRAME_MS // 1000
    pcm = np.frombuffer(audio.pcm, "<i2").astype(np.float64)
    frames = pcm[: len(pcm) // size * size].reshape(-1, size)
    rms = np.sqrt(np.mean(frames**2, axis=1)) if len(frames) else np.zeros(0)
    return 20 * np.log10(np.maximum(rms, 32768 * 1e-6) / 32768)


def speech_bounds(audio: AudioFrame) -> tuple[int, int] | None:
    """(first, last) loud frame of a recording, or None if it is silent."""
    loud = np.flatnonzero(frame_dbfs(audio) >= LOUD_DBFS)
    return (int(loud[0]), int(loud[-1])) if len(loud) else None


# --- the clocks ---------------------------------------------------------------------------
def wav_data_offset(path: Path) -> int:
    """Byte offset of a WAV file's ``data`` chunk (libsndfile writes 44, but check)."""
    with path.open("rb") as f:
        head = f.read(4096)
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = struct.unpack("<4sI", head[pos:pos + 8])
        if chunk == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    return 44


@dataclass(eq=False)  # kept in a set: hashed by identity
class DumpClock:
    """When each sample of one phone's two dumps was written, from their growing sizes."""

    dumps: Path
    sizes: dict[str, list[tuple[float, int]]] = field(
        default_factory=lambda: {"enc": [], "dec": []})
    """Per dump: (``time.monotonic()`` just after the stat, file size in bytes)."""
    paths: dict[str, Path] = field(default_factory=dict)

    def tick(self) -> None:
        if len(self.paths) < 2:
            self._find()
        for kind, path in self.paths.items():
            try:
                size = os.stat(path).st_size
            except OSError:
                continue
            self.sizes[kind].append((time.monotonic(), size))

    def _find(self) -> None:
        """The first pair of dumps (a transferred caller's second call makes another)."""
        try:
            names = sorted(os.listdir(self.dumps))
        except OSError:
            return
        for kind in ("enc", "dec"):
            if kind not in self.paths:
                found = [n for n in names if n.endswith(f"-{kind}.wav")]
                if found:
                    self.paths[kind] = self.dumps / found[0]

    def timeline(self, kind: str) -> Timeline | None:
        """The dump's audio and its clock, once the call is over and the dump closed."""
        path = self.paths.get(kind)
        if path is None or not path.exists():
            return None
        offset = wav_data_offset(path)
        points = [(t, max(0, (size - offset) // 2)) for t, size in self.sizes[kind]]
        return Timeline(read_wav(path), [t for t, _ in points], [n for _, n in points])


@dataclass
class Timeline:
    """One dump: its audio, and how many samples it held at each sampling instant."""

    audio: AudioFrame
    times: list[float]
    counts: list[int]

    @property
    def rate(self) -> int:
        return self.audio.sample_rate

    @property
    def clocked(self) -> bool:
        return len(self.counts) > 2 and self.counts[-1] > 0

    def written(self, sample: int) -> tuple[float, float] | None:
        """(after, by): the interval in which ``sample`` was written; None if never seen."""
        i = bisect.bisect_right(self.counts, sample)
        if i >= len(self.counts):
            return None
        after = self.times[i - 1] if i > 0 else self.times[i] - FRAME_MS / 1000
        return after, self.times[i]

    def held_at(self, t: float) -> int:
        """Samples surely written by ``t``."""
        i = bisect.bisect_right(self.times, t)
        return self.counts[i - 1] if i > 0 else 0

    def start(self) -> float | None:
        """When sample 0 was written (best estimate: the earliest ``t - n / rate``)."""
        points = [t - n / self.rate for t, n in zip(self.times, self.counts, strict=True) if n > 0]
        return min(points) if points else None

    def spread_ms(self) -> float | None:
        """How far the dump's writes stray from one steady real-time clock: ~one sampling
        interval when the stream is continuous, more when it paused (gaps, bursts)."""
        points = [t - n / self.rate for t, n in zip(self.times, self.counts, strict=True) if n > 0]
        if len(points) < 3:
            return None
        points.sort()
        return round(1000 * (points[int(0.99 * (len(points) - 1))] - points[0]), 1)


# --- one turn -----------------------------------------------------------------------------
def _mid(interval: tuple[float, float]) -> float:
    return (interval[0] + interval[1]) / 2


def measure_turn(enc: Timeline, dec: Timeline, q_start: int, q_end_expected: int,
                 q_len: int, previous_end: int | None = None) -> dict:
    """The phone-side reply to one question.

    ``q_start`` and ``q_len``: where the question's recording sits in the script (samples);
    ``q_end_expected``: the script's sample just after its last loud frame;
    ``previous_end``: the previous question's ``_dec_frame_at_end``. If the bot said
    nothing between the previous question's end and this one's, the previous reply was
    still to come, and the next audio cannot be told apart from it: not measured.
    Keys starting with ``_`` are for the caller, not for the report."""
    size = enc.rate * FRAME_MS // 1000
    out: dict = {}
    levels = frame_dbfs(enc.audio)
    first, last = q_start // size, min(len(levels), (q_start + q_len) // size + 10)
    loud = np.flatnonzero(levels[first:last] >= LOUD_DBFS)
    if not len(loud):
        return {"error": "the question is not in what the phone sent"}
    end_frame = first + int(loud[-1])
    end_sample = (end_frame + 1) * size
    out["end_vs_script_ms"] = round((end_sample - q_end_expected) * 1000 / enc.rate)
    sent = enc.written(end_frame * size)

    dsize = dec.rate * FRAME_MS // 1000
    dlevels = frame_dbfs(dec.audio)
    if sent is not None and dec.clocked:
        search = dec.held_at(sent[0]) // dsize
    else:  # no clock: read both dumps as if they started together
        search = end_sample * dec.rate // enc.rate // dsize
    out["_dec_frame_at_end"] = search
    before = dlevels[max(0, search - QUIET_BEFORE_MS // FRAME_MS):search]
    out["floor_dbfs"] = round(float(np.max(before)), 1) if len(before) else None
    if previous_end is not None and not np.any(dlevels[previous_end:search] >= LOUD_DBFS):
        out["error"] = "the reply to the previous question had not started when this one ended"
        return out
    if len(before) and float(np.max(before)) >= LOUD_DBFS:
        out["error"] = "the bot was still speaking when the question ended"
        return out
    limit = search + int(MAX_REPLY_S * 1000 / FRAME_MS)
    onset = np.flatnonzero(dlevels[search:limit] >= LOUD_DBFS)
    if not len(onset):
        out["error"] = f"no reply heard within {MAX_REPLY_S:.0f} s"
        return out
    onset_frame = search + int(onset[0])
    out["by_position_ms"] = round(1000 * (onset_frame * dsize / dec.rate
                                          - end_frame * size / enc.rate))
    arrived = dec.written(onset_frame * dsize)
    if sent is None or arrived is None:
        out["reply_ms"] = out["by_position_ms"]
        out["clock"] = "positions (a dump was not clocked)"
        return out
    out["reply_ms"] = round(1000 * (_mid(arrived) - _mid(sent)))
    out["plus_minus_ms"] = round(500 * ((arrived[1] - arrived[0]) + (sent[1] - sent[0])))
    out["_sent_at"] = _mid(sent)
    out["_arrived_at"] = _mid(arrived)
    out["onset_s_in_dec"] = round(onset_frame * dsize / dec.rate, 2)
    return out


def split_with_log(turn: dict, log_seen_at: float | None, response_ms: int | None) -> None:
    """Add ``uplink_ms`` and ``downlink_ms`` (see the module's doc) when both are known."""
    if log_seen_at is None or response_ms is None or "_sent_at" not in turn:
        return
    engine_end = log_seen_at - response_ms / 1000
    turn["uplink_ms"] = round(1000 * (engine_end - turn["_sent_at"]))
    turn["downlink_ms"] = round(1000 * (turn["_arrived_at"] - log_seen_at))


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a reported p95 is a measured value)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
            "min": min(values, default=None), "max": max(values, default=None)}
