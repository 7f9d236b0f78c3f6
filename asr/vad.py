"""Silero voice activity detection: the ONNX network shipped inside faster-whisper.

The network reads 32 ms windows (512 samples at 16 kHz) preceded by the last 64 samples
of the previous window, and carries an LSTM state from window to window. ``SileroModel``
is the loaded network, shared by every call (an ONNX Runtime session may be run from
several threads); ``StreamingVad`` holds one call's state and turns the pipeline's 20 ms
frames into speech probabilities, buffering the samples that do not fill a window yet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bot.audio import ASR_RATE, AudioFrame, frame_bytes

WINDOW_SAMPLES = 512  # 32 ms at 16 kHz, the only size the 16 kHz network accepts
CONTEXT_SAMPLES = 64
STATE_SHAPE = (1, 1, 128)
WINDOW_MS = WINDOW_SAMPLES * 1000 // ASR_RATE


def default_model_path() -> Path:
    from faster_whisper.utils import get_assets_path

    return Path(get_assets_path()) / "silero_vad_v6.onnx"


class SileroModel:
    """The loaded Silero network; stateless, so one instance serves every call."""

    def __init__(self, session):
        self._session = session

    @classmethod
    def load(cls, path: Path | None = None) -> SileroModel:
        import onnxruntime

        opts = onnxruntime.SessionOptions()
        # One window costs ~0.1 ms: threads would only contend with Whisper for the cores.
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        opts.log_severity_level = 4
        session = onnxruntime.InferenceSession(
            str(path or default_model_path()), sess_options=opts,
            providers=["CPUExecutionProvider"],
        )
        return cls(session)

    def run(self, windows: np.ndarray, state: tuple[np.ndarray, np.ndarray]
            ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """Speech probabilities of consecutive (context + window) rows, and the next state."""
        h, c = state
        probs, h, c = self._session.run(None, {"input": windows, "h": h, "c": c})
        return probs.reshape(-1), (h, c)

    def probabilities(self, audio: AudioFrame) -> np.ndarray:
        """One probability per 32 ms window of a whole 16 kHz buffer (the tail is padded)."""
        samples = _as_float(audio)
        if len(samples) == 0:
            return np.zeros(0, np.float32)
        padded = -len(samples) % WINDOW_SAMPLES
        samples = np.concatenate([samples, np.zeros(padded, np.float32)])
        windows = samples.reshape(-1, WINDOW_SAMPLES)
        context = np.zeros((len(windows), CONTEXT_SAMPLES), np.float32)
        context[1:] = windows[:-1, -CONTEXT_SAMPLES:]
        probs, _ = self.run(np.concatenate([context, windows], axis=1), initial_state())
        return probs

    def speech_ms(self, audio: AudioFrame, threshold: float) -> int:
        """Milliseconds of a buffer that Silero hears as speech."""
        return int(np.count_nonzero(self.probabilities(audio) >= threshold)) * WINDOW_MS


def initial_state() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros(STATE_SHAPE, np.float32), np.zeros(STATE_SHAPE, np.float32)


class StreamingVad:
    """One call's VAD: 20 ms frames in, the speech probability of the latest window out."""

    def __init__(self, model: SileroModel):
        self._model = model
        self.reset()

    def reset(self) -> None:
        self._state = initial_state()
        self._context = np.zeros(CONTEXT_SAMPLES, np.float32)
        self._pending = np.zeros(0, np.float32)
        self._probability = 0.0
        self._before = 0.0

    def frames(self, chunk: AudioFrame) -> list[tuple[AudioFrame, float]]:
        """Cut a 16 kHz chunk (a whole number of 20 ms frames) into 20 ms frames, each with
        the probability of the latest window complete at its end, as ``process`` would give
        frame by frame; but every window of the chunk goes through the network in one run,
        which is what a node with many calls can afford."""
        if chunk.sample_rate != ASR_RATE:
            raise ValueError(f"the VAD reads {ASR_RATE} Hz audio, got {chunk.sample_rate} Hz")
        step = frame_bytes(ASR_RATE)
        if len(chunk.pcm) <= step:
            return [(chunk, self.process(chunk))]
        pending = len(self._pending)
        probabilities = self._windows(_as_float(chunk))
        out: list[tuple[AudioFrame, float]] = []
        previous = self._before
        for start in range(0, len(chunk.pcm), step):
            frame = AudioFrame(chunk.pcm[start : start + step], ASR_RATE)
            # windows complete at this frame's end (the buffered samples come first)
            done = (pending + (start + len(frame.pcm)) // 2) // WINDOW_SAMPLES
            out.append((frame, float(probabilities[done - 1]) if done else previous))
        return out

    def process(self, frame: AudioFrame) -> float:
        """Feed a 16 kHz frame; return the probability of the most recent complete window.

        A 20 ms frame completes a window every 1.6 frames, so a frame that completes none
        reports the previous window's value: at most 32 ms late, never made up.
        """
        if frame.sample_rate != ASR_RATE:
            raise ValueError(f"the VAD reads {ASR_RATE} Hz audio, got {frame.sample_rate} Hz")
        probabilities = self._windows(_as_float(frame))
        return float(probabilities[-1]) if len(probabilities) else self._probability

    def _windows(self, samples: np.ndarray) -> np.ndarray:
        """The probabilities of the windows these samples complete (after those buffered)."""
        self._before = self._probability
        self._pending = np.concatenate([self._pending, samples])
        count = len(self._pending) // WINDOW_SAMPLES
        if count == 0:
            return np.zeros(0, np.float32)
        rows = np.empty((count, CONTEXT_SAMPLES + WINDOW_SAMPLES), np.float32)
        for i in range(count):
            window = self._pending[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES]
            rows[i, :CONTEXT_SAMPLES] = self._context
            rows[i, CONTEXT_SAMPLES:] = window
            self._context = window[-CONTEXT_SAMPLES:]
        self._pending = self._pending[count * WINDOW_SAMPLES :]
        probs, self._state = self._model.run(rows, self._state)
        self._probability = float(probs[-1])
        return probs


def _as_float(audio: AudioFrame) -> np.ndarray:
    return np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32) / 32768.0
