"""Audio as the pipeline passes it: PCM16 mono frames that carry their own sample rate.

A bare ``bytes`` whose rate the reader has to guess is how 8 kHz audio ends up played at
16 kHz; every buffer that crosses a module boundary is an ``AudioFrame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bot.errors import VoicebotError

SAMPLE_WIDTH = 2  # bytes per sample: PCM16, little endian, mono
FRAME_MS = 20  # the telephone packet time, and the pipeline's frame size
LINE_RATE = 8000  # G.711 on the 3230 line
ASR_RATE = 16000  # what Whisper and Silero expect


@dataclass(frozen=True)
class AudioFrame:
    """PCM16 mono audio at ``sample_rate`` Hz (any length, usually 20 ms)."""

    pcm: bytes
    sample_rate: int

    @property
    def samples(self) -> int:
        return len(self.pcm) // SAMPLE_WIDTH

    @property
    def duration_ms(self) -> int:
        return samples_to_ms(self.samples, self.sample_rate)


def samples_to_ms(samples: int, sample_rate: int) -> int:
    """Whole milliseconds in ``samples`` (rounded down: never claim more than was played)."""
    return samples * 1000 // sample_rate


def frame_bytes(sample_rate: int, frame_ms: int = FRAME_MS) -> int:
    return sample_rate * frame_ms // 1000 * SAMPLE_WIDTH


# --- Resampling: the only place in the project that changes a sample rate -----------------

_STREAM_TAPS = 63  # ~2 ms of delay at 16 kHz; flat over the telephone band (300–3400 Hz)
_STREAM_MAX_FACTOR = 6  # up × down; larger ratios (22 050 → 8 000) use resample() instead


class StreamResampler:
    """Resample a stream of frames (8 kHz line → 16 kHz ASR) without clicks at frame edges.

    Resampling each 20 ms frame on its own restarts the filter every frame, which puts a
    small discontinuity, heard as a 50 Hz buzz, at each edge. This keeps the polyphase
    filter's state between frames, so the output is the same as resampling the whole call
    at once, delayed by half the filter (about 2 ms). One instance per direction per call.
    """

    def __init__(self, in_rate: int, out_rate: int):
        from math import gcd

        import numpy as np
        from scipy.signal import firwin

        g = gcd(in_rate, out_rate)
        self.in_rate, self.out_rate = in_rate, out_rate
        self._up, self._down = out_rate // g, in_rate // g
        if self._up * self._down > _STREAM_MAX_FACTOR:
            raise ValueError(
                f"stream resampling {in_rate} -> {out_rate} Hz needs a small integer ratio; "
                "use resample() for whole buffers"
            )
        fast_rate = in_rate * self._up
        cutoff_hz = 0.45 * min(in_rate, out_rate)  # 3600 Hz for 8 <-> 16 kHz
        taps = firwin(_STREAM_TAPS, cutoff_hz, fs=fast_rate, window=("kaiser", 8.0))
        taps *= self._up  # zero-stuffing divides the level by `up`
        # Polyphase: output sample n·up + p is phase p's taps over the input, so no zero is
        # ever multiplied. The same numbers as filtering the zero-stuffed stream, at a
        # seventh of the cost: the engine runs this for every 20 ms of every call.
        self._phases = [taps[p :: self._up] for p in range(self._up)]
        self._history = np.zeros(max(len(taps_p) for taps_p in self._phases) - 1)
        self._phase = 0  # index of the next kept sample in the upsampled stream

    def process(self, frame: AudioFrame) -> AudioFrame:
        import numpy as np

        if frame.sample_rate != self.in_rate:
            raise ValueError(f"expected {self.in_rate} Hz audio, got {frame.sample_rate} Hz")
        samples = np.frombuffer(frame.pcm, dtype="<i2").astype(np.float64)
        held = len(self._history)
        stream = np.concatenate([self._history, samples])
        fast = np.empty(len(samples) * self._up)
        for p, taps_p in enumerate(self._phases):
            fast[p :: self._up] = np.convolve(stream[held - (len(taps_p) - 1):], taps_p, "valid")
        if held:
            self._history = stream[-held:]
        kept = fast[self._phase :: self._down]
        self._phase = (self._phase - len(fast)) % self._down
        return AudioFrame(_to_pcm16(kept), self.out_rate)


def resample(frame: AudioFrame, to_rate: int) -> AudioFrame:
    """Resample a whole buffer (a synthesised sentence, a file) in one pass.

    For audio that exists in full before it is used, like a TTS sentence at the voice's
    rate (22 050 Hz) going to the line (8 000 Hz); a polyphase filter handles any ratio.
    """
    if frame.sample_rate == to_rate:
        return frame
    from math import gcd

    import numpy as np
    from scipy.signal import resample_poly

    g = gcd(frame.sample_rate, to_rate)
    samples = np.frombuffer(frame.pcm, dtype="<i2").astype(np.float64)
    out = resample_poly(samples, to_rate // g, frame.sample_rate // g)
    return AudioFrame(_to_pcm16(out), to_rate)


def _to_pcm16(samples) -> bytes:
    import numpy as np

    out = np.rint(samples)
    np.minimum(out, 32767, out=out)  # np.clip costs ten times more on a 20 ms frame
    np.maximum(out, -32768, out=out)
    return out.astype("<i2").tobytes()


# --- WAV files at the edges (CLI, tests, benchmarks) ---------------------------------------


class AudioFileError(VoicebotError):
    """A WAV file a person handed us cannot be read as audio."""


WAV_EXPECTED = ("attendu un fichier WAV (PCM 8, 16, 24 ou 32 bits, flottant, A-law ou μ-law ; "
                "mono ou stéréo ; toute fréquence)")
WAV_MIN_RATE = 4000
WAV_MAX_RATE = 384000
_PCM, _FLOAT, _ALAW, _MULAW, _EXTENSIBLE = 1, 3, 6, 7, 0xFFFE
_STREAMED_SIZES = (0, 0xFFFFFFFF)  # a data size left unknown by a program writing to a pipe
_NOT_WAV = (  # what a file that is not a WAV usually is, by its first bytes
    (b"ID3", "un MP3"), (b"\xff\xfb", "un MP3"), (b"\xff\xf3", "un MP3"), (b"OggS", "un Ogg"),
    (b"fLaC", "un FLAC"), (b"\x1aE\xdf\xa3", "un WebM ou MKV"), (b"#!AMR", "un AMR"),
    (b"FORM", "un AIFF"), (b"PK", "une archive ZIP"),
    (b"%PDF", "un PDF"),
)


def read_wav(path: Path) -> AudioFrame:
    """Read a WAV file as PCM16 mono at its own rate; anything else is an ``AudioFileError``.

    PCM of 8 to 32 bits, 32/64-bit float, A-law and μ-law (telephone recordings), the
    extensible header, any number of channels (averaged) and any rate from 4 to 384 kHz
    (the transcriber resamples). Python's ``wave`` reads only integer PCM, so the RIFF
    chunks are walked here; a file cut short is refused rather than half-read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AudioFileError(f"{path} : fichier introuvable.") from None
    except IsADirectoryError:
        raise AudioFileError(f"{path} : c'est un dossier, pas un fichier WAV.") from None
    except PermissionError:
        raise AudioFileError(f"{path} : lecture refusée (droits d'accès).") from None
    except OSError as exc:
        raise AudioFileError(f"{path} : fichier illisible ({exc.strerror or exc}).") from None
    if not data:
        raise AudioFileError(f"{path} : fichier vide (0 octet) ; {WAV_EXPECTED}.")
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioFileError(f"{path} : fichier WAV illisible ({_what_it_is(data)}) ; "
                             f"{WAV_EXPECTED}.")
    fmt, samples, declared = _riff_chunks(path, data)
    tag, channels, rate, block, bits = fmt
    if channels < 1:
        raise AudioFileError(f"{path} : fichier WAV illisible (0 canal annoncé) ; {WAV_EXPECTED}.")
    if not WAV_MIN_RATE <= rate <= WAV_MAX_RATE:
        raise AudioFileError(f"{path} : fréquence d'échantillonnage invalide ({rate} Hz) ; "
                             f"attendu de {WAV_MIN_RATE} à {WAV_MAX_RATE} Hz.")
    width = {(_PCM, 8): 1, (_PCM, 16): 2, (_PCM, 24): 3, (_PCM, 32): 4, (_FLOAT, 32): 4,
             (_FLOAT, 64): 8, (_ALAW, 8): 1, (_MULAW, 8): 1}.get((tag, bits))
    if width is None:
        kind = {_PCM: "PCM", _FLOAT: "flottant", _ALAW: "A-law", _MULAW: "μ-law"}.get(tag)
        what = f"{kind} {bits} bits" if kind else f"encodage compressé, code {tag}"
        raise AudioFileError(f"{path} : fichier WAV illisible ({what}) ; {WAV_EXPECTED}.")
    if block != width * channels:
        raise AudioFileError(f"{path} : fichier WAV illisible (en-tête incohérent : blocs de "
                             f"{block} octets pour {channels} canal(aux) de {bits} bits) ; "
                             f"{WAV_EXPECTED}.")
    if declared is not None and len(samples) < declared:
        raise AudioFileError(
            f"{path} : fichier WAV tronqué (l'en-tête annonce "
            f"{_seconds(declared / (block * rate))} d'audio, le fichier s'arrête à "
            f"{_seconds(len(samples) // block / rate)}) ; recopiez ou réenregistrez le fichier "
            "en entier.")
    samples = samples[: len(samples) - len(samples) % block]  # half a sample: nothing to hear
    if not samples:
        raise AudioFileError(f"{path} : le fichier ne contient aucun échantillon audio.")
    return AudioFrame(_as_pcm16_mono(samples, tag, width, channels), rate)


def _riff_chunks(path: Path, data: bytes) -> tuple[tuple[int, int, int, int, int], bytes,
                                                    int | None]:
    """(format, the data chunk's bytes, its declared size or None if left unknown)."""
    import struct

    fmt = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        body = offset + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                break
            tag, channels, rate, _, block, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _EXTENSIBLE and size >= 40 and body + 26 <= len(data):
                tag = struct.unpack_from("<H", data, body + 24)[0]  # the sub-format GUID
            fmt = (tag, channels, rate, block, bits)
        elif chunk_id == b"data":
            if fmt is None:
                break
            if size in _STREAMED_SIZES:
                return fmt, data[body:], None
            return fmt, data[body : body + size], size
        offset = body + size + (size & 1)  # chunks are padded to an even size
    missing = "bloc fmt absent ou tronqué" if fmt is None else "bloc data absent"
    raise AudioFileError(f"{path} : fichier WAV illisible (en-tête tronqué : {missing}) ; "
                         f"{WAV_EXPECTED}.")


def _as_pcm16_mono(samples: bytes, tag: int, width: int, channels: int) -> bytes:
    import audioop

    import numpy as np

    if tag == _ALAW:
        pcm = np.frombuffer(audioop.alaw2lin(samples, 2), "<i2").astype(np.float64)
    elif tag == _MULAW:
        pcm = np.frombuffer(audioop.ulaw2lin(samples, 2), "<i2").astype(np.float64)
    elif tag == _FLOAT:
        values = np.frombuffer(samples, "<f4" if width == 4 else "<f8").astype(np.float64)
        pcm = np.nan_to_num(values, nan=0.0, posinf=1.0, neginf=-1.0) * 32768.0
    elif width == 1:
        pcm = (np.frombuffer(samples, np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 3:
        raw = np.frombuffer(samples, np.uint8).reshape(-1, 3).astype(np.int32)
        pcm = ((raw[:, 0] << 8 | raw[:, 1] << 16 | raw[:, 2] << 24) >> 16).astype(np.float64)
    else:
        pcm = np.frombuffer(samples, "<i2" if width == 2 else "<i4").astype(np.float64)
        if width == 4:
            pcm /= 65536.0
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1)
    return _to_pcm16(pcm)


def _what_it_is(data: bytes) -> str:
    if len(data) < 12 and b"RIFF".startswith(data[:4]):
        return "en-tête absent ou tronqué"
    if data[:4] == b"RIFF":
        return "fichier RIFF qui n'est pas du son WAVE"
    if data[4:8] == b"ftyp":
        return "ce n'est pas un fichier RIFF/WAV : on dirait un MP4 ou M4A"
    for magic, name in _NOT_WAV:
        if data.startswith(magic):
            return f"ce n'est pas un fichier RIFF/WAV : on dirait {name}"
    return "ce n'est pas un fichier RIFF/WAV"


def _seconds(value: float) -> str:
    return f"{value:.1f} s".replace(".", ",")


def write_wav(path: Path, frame: AudioFrame) -> None:
    import wave

    # Open the file first: wave.open(str) that fails to create the file leaves a broken
    # Wave_write whose __del__ raises (Python 3.10).
    with open(path, "wb") as out, wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(frame.sample_rate)
        wav.writeframes(frame.pcm)
