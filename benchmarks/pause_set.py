"""The pause set: real French utterances with a silence inserted mid-sentence.

A caller who stops to read a number off a letter pauses 300–900 ms in the middle of a
sentence; an endpointer that ends the turn there cuts them off. Two kinds of items,
all from the recorded telephone prompts in ``tests/data/asr/fr``:

- ``sentence``: each prompt with a pause inserted at the quietest 20 ms frame of the middle
  of its speech (a word boundary, found by energy, not by a model);
- ``number``: a 7-digit allocataire number read in groups ("2 4 6 [pause] 1 3 [pause] …").

Each item sits between 600 ms of line noise before and 2.5 s after, at 8 kHz after a
G.711 μ-law round trip, and knows where its speech really ends, so a run can tell a
cut-off (the turn ended before that) from the wait after a finished utterance.
"""

from __future__ import annotations

import audioop
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bot.audio import FRAME_MS, LINE_RATE, AudioFrame, read_wav

PAUSES_MS = (300, 450, 600, 750, 900)
LEAD_MS = 600
TAIL_MS = 2500
NOISE_DBFS = -60.0  # a quiet line's hiss; digital zero never reaches a real endpointer


@dataclass(frozen=True)
class PauseItem:
    name: str
    kind: str  # "sentence" or "number"
    audio: AudioFrame  # 8 kHz, μ-law round-tripped
    pause_ms: int
    speech_end_ms: int
    """Where the caller's last word ends: an end of turn before this is a cut-off."""


def build(data_dir: Path, seed: int = 3230) -> list[PauseItem]:
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    items: list[PauseItem] = []
    for index, wav in enumerate(sorted((data_dir).glob("*.wav"))):
        samples = _samples(read_wav(wav))
        pause_ms = PAUSES_MS[index % len(PAUSES_MS)]
        start, end = _speech_bounds(samples)
        cut = _quietest_frame(samples, start + (end - start) * 3 // 10,
                              start + (end - start) * 7 // 10)
        pieces = [samples[:cut], _silence(pause_ms), samples[cut:]]
        items.append(_item(wav.stem, "sentence", pieces, pause_ms, noise))
    digits = {d: _trim(_samples(read_wav(data_dir / "digits" / f"{d}.wav"))) for d in range(10)}
    for index in range(15):
        number = [rng.randrange(10) for _ in range(7)]
        groups = (number[:3], number[3:5], number[5:])
        pause_ms = PAUSES_MS[index % len(PAUSES_MS)]
        pieces: list[np.ndarray] = []
        for g, group in enumerate(groups):
            if g:
                pieces.append(_silence(pause_ms))
            for d in group:
                pieces += [digits[d], _silence(120)]
        items.append(_item("numero-" + "".join(map(str, number)), "number", pieces, pause_ms,
                           noise))
    return items


def _item(name: str, kind: str, pieces: list[np.ndarray], pause_ms: int,
          noise: np.random.Generator) -> PauseItem:
    speech = np.concatenate(pieces)
    _, speech_end = _speech_bounds(speech)
    lead, tail = _silence(LEAD_MS), _silence(TAIL_MS)
    signal = np.concatenate([lead, speech, tail]).astype(np.float64)
    signal += noise.normal(0.0, 32768 * 10 ** (NOISE_DBFS / 20), len(signal))
    pcm = np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes()
    pcm = audioop.ulaw2lin(audioop.lin2ulaw(pcm, 2), 2)
    end_ms = (len(lead) + speech_end) * 1000 // LINE_RATE
    return PauseItem(name, kind, AudioFrame(pcm, LINE_RATE), pause_ms, end_ms)


def _samples(frame: AudioFrame) -> np.ndarray:
    assert frame.sample_rate == LINE_RATE, frame.sample_rate
    return np.frombuffer(frame.pcm, dtype="<i2").astype(np.int32)


def _silence(ms: int) -> np.ndarray:
    return np.zeros(LINE_RATE * ms // 1000, np.int32)


def _frame_energy(samples: np.ndarray) -> np.ndarray:
    n = LINE_RATE * FRAME_MS // 1000
    frames = samples[: len(samples) // n * n].reshape(-1, n).astype(np.float64)
    return np.sqrt(np.mean(frames**2, axis=1))


def _speech_bounds(samples: np.ndarray) -> tuple[int, int]:
    """First and last sample of frames louder than 1/30 of the loudest (about -30 dB)."""
    energy = _frame_energy(samples)
    loud = np.nonzero(energy > energy.max() / 30)[0]
    n = LINE_RATE * FRAME_MS // 1000
    return int(loud[0]) * n, (int(loud[-1]) + 1) * n


def _quietest_frame(samples: np.ndarray, lo: int, hi: int) -> int:
    n = LINE_RATE * FRAME_MS // 1000
    energy = _frame_energy(samples)
    first, last = lo // n, max(lo // n + 1, hi // n)
    return (first + int(np.argmin(energy[first:last]))) * n


def _trim(samples: np.ndarray) -> np.ndarray:
    start, end = _speech_bounds(samples)
    return samples[start:end]
