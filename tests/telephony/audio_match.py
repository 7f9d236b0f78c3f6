"""Does a recording contain a known audio, after a codec round trip? Cross-correlation says.

"Non-silent" proves nothing (line noise is non-silent); the normalised cross-correlation
peak of the reference against the recording is near 1 only when the same waveform is
there, whatever the delay, and stays low for other speech or a tone.
"""

from __future__ import annotations

import numpy as np

from bot.audio import AudioFrame, resample


def match(reference: AudioFrame, recording: AudioFrame) -> tuple[float, float]:
    """(peak normalised correlation, delay in seconds) of ``reference`` inside ``recording``."""
    recording = resample(recording, reference.sample_rate)
    ref = np.frombuffer(reference.pcm, "<i2").astype(np.float64)
    rec = np.frombuffer(recording.pcm, "<i2").astype(np.float64)
    if len(rec) < len(ref):
        rec = np.concatenate([rec, np.zeros(len(ref) - len(rec))])
    size = 1 << int(np.ceil(np.log2(len(rec) + len(ref))))
    corr = np.fft.irfft(np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size)), size)
    corr = corr[: len(rec) - len(ref) + 1]
    window = np.concatenate([[0.0], np.cumsum(rec**2)])
    energy = window[len(ref):] - window[: len(rec) - len(ref) + 1]
    score = corr / (np.linalg.norm(ref) * np.sqrt(np.maximum(energy, 1e-9)))
    best = int(np.argmax(score))
    return float(score[best]), best / reference.sample_rate


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
