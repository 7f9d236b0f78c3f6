"""WAV files in every layout a caller's recording may come in, written byte by byte.

Python's ``wave`` writes only integer PCM with the plain header; the tests need float,
24-bit, A-law, μ-law, the extensible header and cut-off files too.
"""

from __future__ import annotations

import audioop
import struct

import numpy as np

PCM, FLOAT, ALAW, MULAW, EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def encode(pcm16: np.ndarray, kind: str) -> tuple[int, int, bytes]:
    """(format tag, bits per sample, sample bytes) of int16 samples (any shape) in ``kind``."""
    flat = pcm16.astype(np.int16).reshape(-1)
    if kind == "pcm8":
        return PCM, 8, ((flat.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()
    if kind == "pcm16":
        return PCM, 16, flat.astype("<i2").tobytes()
    if kind == "pcm24":
        wide = flat.astype(np.int32) << 8
        raw = wide.astype("<i4").view(np.uint8).reshape(-1, 4)[:, :3]
        return PCM, 24, raw.tobytes()
    if kind == "pcm32":
        return PCM, 32, (flat.astype(np.int32) << 16).astype("<i4").tobytes()
    if kind == "float32":
        return FLOAT, 32, (flat / 32768.0).astype("<f4").tobytes()
    if kind == "float64":
        return FLOAT, 64, (flat / 32768.0).astype("<f8").tobytes()
    if kind == "alaw":
        return ALAW, 8, audioop.lin2alaw(flat.astype("<i2").tobytes(), 2)
    if kind == "mulaw":
        return MULAW, 8, audioop.lin2ulaw(flat.astype("<i2").tobytes(), 2)
    raise ValueError(kind)


def wav_bytes(samples: bytes, tag: int, bits: int, channels: int, rate: int,
              extensible: bool = False, data_size: int | None = None) -> bytes:
    """A whole WAV file; ``data_size`` overrides the size the data chunk announces."""
    block = bits // 8 * channels
    if extensible:
        fmt = struct.pack("<HHIIHHHHIH", EXTENSIBLE, channels, rate, rate * block, block, bits,
                          22, bits, 0, tag) + _GUID_TAIL
    else:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    size = len(samples) if data_size is None else data_size
    body = (b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
            + b"LIST" + struct.pack("<I", 4) + b"INFO"
            + b"data" + struct.pack("<I", size) + samples)
    return b"RIFF" + struct.pack("<I", len(body)) + body
