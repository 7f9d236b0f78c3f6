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


def read_wav(path: Path) -> AudioFrame:
    """Read a PCM WAV file (any sample width, mono or stereo, any rate) as PCM16 mono."""
    import audioop
    import wave

    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioFileError(f"{path} : fichier introuvable.") from None
    except IsADirectoryError:
        raise AudioFileError(f"{path} : c'est un dossier, pas un fichier WAV.") from None
    except (wave.Error, EOFError) as exc:
        reason = _french_wave_error(str(exc))
        raise AudioFileError(
            f"{path} : fichier WAV illisible ({reason}) ; attendu un WAV PCM mono 8 ou 16 kHz."
        ) from None
    if channels not in (1, 2):
        raise AudioFileError(f"{path} : {channels} canaux ; attendu un WAV mono (ou stéréo).")
    if rate < 4000:
        raise AudioFileError(f"{path} : fréquence d'échantillonnage invalide ({rate} Hz).")
    if width == 1:
        data = audioop.bias(data, 1, -128)  # 8-bit WAV is unsigned
    if width != SAMPLE_WIDTH:
        data = audioop.lin2lin(data, width, SAMPLE_WIDTH)
    if channels == 2:
        data = audioop.tomono(data, SAMPLE_WIDTH, 0.5, 0.5)
    if not data:
        raise AudioFileError(f"{path} : le fichier ne contient aucun échantillon audio.")
    return AudioFrame(data, rate)


def _french_wave_error(message: str) -> str:
    if message.startswith("unknown format"):
        return f"encodage non PCM, code {message.rsplit(' ', 1)[-1]}"
    return {
        "": "en-tête absent ou tronqué",
        "file does not start with RIFF id": "ce n'est pas un fichier RIFF/WAV",
        "not a WAVE file": "ce n'est pas un fichier WAVE",
        "fmt chunk and/or data chunk missing": "bloc fmt ou data absent",
        "bad sample width": "taille d'échantillon invalide",
    }.get(message, message)


def write_wav(path: Path, frame: AudioFrame) -> None:
    import wave

    # Open the file first: wave.open(str) that fails to create the file leaves a broken
    # Wave_write whose __del__ raises (Python 3.10).
    with open(path, "wb") as out, wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(frame.sample_rate)
        wav.writeframes(frame.pcm)
