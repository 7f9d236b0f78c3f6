"""Audio the tests generate: telephone-level noise, DTMF key presses, the line's μ-law."""

from __future__ import annotations

import audioop

import numpy as np

from bot.audio import LINE_RATE, AudioFrame, read_wav
from bot.settings import PROJECT_ROOT

FRENCH = PROJECT_ROOT / "tests" / "data" / "asr" / "fr"

DTMF_HZ = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209),
           "5": (770, 1336), "6": (770, 1477), "7": (852, 1209), "8": (852, 1336),
           "9": (852, 1477), "*": (941, 1209), "0": (941, 1336), "#": (941, 1477)}


def to_frame(signal: np.ndarray, rate: int = LINE_RATE) -> AudioFrame:
    return AudioFrame(np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes(), rate)


def dbfs(level: float) -> float:
    return 32768 * 10 ** (level / 20)


def white_noise(seconds: float, level_dbfs: float, seed: int = 1) -> AudioFrame:
    rng = np.random.default_rng(seed)
    return to_frame(rng.normal(0, dbfs(level_dbfs), int(LINE_RATE * seconds)))


def pink_noise(seconds: float, level_dbfs: float, seed: int = 2) -> AudioFrame:
    n = int(LINE_RATE * seconds)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0, 1, n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return to_frame(pink / np.std(pink) * dbfs(level_dbfs))


def dtmf(keys: str, tone_ms: int = 120, gap_ms: int = 150, level_dbfs: float = -10) -> AudioFrame:
    """Key presses as a telephone sends them in-band: two sines per key, then a gap."""
    t = np.arange(LINE_RATE * tone_ms // 1000) / LINE_RATE
    gap = np.zeros(LINE_RATE * gap_ms // 1000)
    parts = []
    for key in keys:
        low, high = DTMF_HZ[key]
        parts += [0.5 * dbfs(level_dbfs) * (np.sin(2 * np.pi * low * t)
                                            + np.sin(2 * np.pi * high * t)), gap]
    return to_frame(np.concatenate(parts))


def silence(seconds: float, rate: int = LINE_RATE) -> AudioFrame:
    return AudioFrame(bytes(int(rate * seconds) * 2), rate)


def concat(*frames: AudioFrame) -> AudioFrame:
    assert len({f.sample_rate for f in frames}) == 1
    return AudioFrame(b"".join(f.pcm for f in frames), frames[0].sample_rate)


def ulaw_round_trip(frame: AudioFrame) -> AudioFrame:
    """What the line does to audio: G.711 μ-law encode and decode at 8 kHz."""
    assert frame.sample_rate == LINE_RATE
    return AudioFrame(audioop.ulaw2lin(audioop.lin2ulaw(frame.pcm, 2), 2), LINE_RATE)


def french(name: str) -> AudioFrame:
    """A recorded French telephone prompt from tests/data/asr/fr (8 kHz, see its README)."""
    return read_wav(FRENCH / f"{name}.wav")
