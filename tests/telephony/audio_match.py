"""Does a recording contain a known audio, after a codec round trip? Cross-correlation says.

"Non-silent" proves nothing (line noise is non-silent); the normalised cross-correlation
peak of the reference against the recording is near 1 only when the same waveform is
there, whatever the delay, and stays low for other speech or a tone.

One correlation over the whole reference is not enough on a loaded machine: a jitter buffer
that drops or repeats one 20 ms frame shifts everything after it, and the whole-waveform
peak falls to the share of the audio on one side of the slip although the listener heard
every word. So the reference is also followed half a second at a time, each piece looked
for a few tens of milliseconds around where the previous one was found; the score is the
better of the two readings.
"""

from __future__ import annotations

import numpy as np

from bot.audio import AudioFrame, resample

PIECE_S = 0.5  # long enough that unrelated speech never correlates, short enough to follow slips
SLIP_S = 0.06  # how far one piece may sit from where the previous one put the audio
QUIET = 0.01  # pieces under this share of the mean piece energy are silence: not scored


def _peak(ref: np.ndarray, rec: np.ndarray) -> tuple[float, int]:
    """(best normalised correlation, offset) of ``ref`` sliding inside ``rec``."""
    if len(rec) < len(ref):
        rec = np.concatenate([rec, np.zeros(len(ref) - len(rec))])
    size = 1 << int(np.ceil(np.log2(len(rec) + len(ref))))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[: len(rec) - len(ref) + 1]
    window = np.concatenate([[0.0], np.cumsum(rec**2)])
    energy = window[len(ref):] - window[: len(rec) - len(ref) + 1]
    score = corr / (np.linalg.norm(ref) * np.sqrt(np.maximum(energy, 1e-9)))
    best = int(np.argmax(score))
    return float(score[best]), best


def _followed(ref: np.ndarray, rec: np.ndarray, lag: int, rate: int) -> float:
    """Energy-weighted mean score of the reference's pieces, each found near the last one."""
    piece, slip = int(PIECE_S * rate), int(SLIP_S * rate)
    starts = range(0, len(ref) - piece + 1, piece)
    energies = [float(np.sum(ref[s:s + piece] ** 2)) for s in starts]
    if not energies:
        return 0.0
    floor = QUIET * float(np.mean(energies))
    total = weight = 0.0
    for start, energy in zip(starts, energies, strict=True):
        if energy <= floor:
            continue
        weight += energy
        low = max(0, lag + start - slip)
        high = min(len(rec), lag + start + piece + slip)
        if high - low < piece:
            continue  # the recording stops before this piece: it was not heard
        score, at = _peak(ref[start:start + piece], rec[low:high])
        total += max(score, 0.0) * energy
        lag = low + at - start
    return total / weight if weight else 0.0


def match(reference: AudioFrame, recording: AudioFrame) -> tuple[float, float]:
    """(score, delay in seconds) of ``reference`` inside ``recording``: near 1 when it is there."""
    recording = resample(recording, reference.sample_rate)
    ref = np.frombuffer(reference.pcm, "<i2").astype(np.float64)
    rec = np.frombuffer(recording.pcm, "<i2").astype(np.float64)
    whole, lag = _peak(ref, rec)
    followed = _followed(ref, rec, lag, reference.sample_rate)
    return max(whole, followed), lag / reference.sample_rate


def padded(frame: AudioFrame, before_s: float, total_s: float) -> AudioFrame:
    """The frame with silence before it and after it, ``total_s`` long in all."""
    width = 2
    lead = b"\0" * (int(before_s * frame.sample_rate) * width)
    body = lead + frame.pcm
    tail = max(0, int(total_s * frame.sample_rate) * width - len(body))
    return AudioFrame(body + b"\0" * tail, frame.sample_rate)


def middle(frame: AudioFrame, trim_s: float = 1.0) -> AudioFrame:
    """The frame without its first and last ``trim_s``: when the bot hangs up right after a
    message, its last packets may still be in flight at the BYE."""
    cut = int(trim_s * frame.sample_rate) * 2
    return AudioFrame(frame.pcm[cut:-cut], frame.sample_rate)
