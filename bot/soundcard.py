"""The computer's microphone and speaker as a phone line: the developer's softphone.

PyAudio calls us from its own threads every 20 ms, like the RTP clock of a real call: the
microphone's frames go to ``audio_in`` through the event loop, and the speaker pulls one
frame from the ``Playout`` (8 kHz, as on the phone line, so the developer hears what a
caller hears) and gets it at the card's 16 kHz.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator
from typing import Any

from bot.audio import ASR_RATE, FRAME_MS, LINE_RATE, AudioFrame, StreamResampler
from bot.errors import VoicebotError
from bot.playout import Playout

CARD_RATE = ASR_RATE
FRAME_SAMPLES = CARD_RATE * FRAME_MS // 1000


class SoundCardError(VoicebotError):
    """No usable microphone or speaker."""


class SoundCardLine:
    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.sample_rate = CARD_RATE
        self.audio_in: asyncio.Queue[AudioFrame] = asyncio.Queue(maxsize=500)
        self.dtmf: asyncio.Queue[str] = asyncio.Queue()
        self.playout = Playout(LINE_RATE, loop)
        self.ended = asyncio.Event()
        self._loop = loop
        self._upsample = StreamResampler(LINE_RATE, CARD_RATE)
        self._pending = bytearray()  # resampled speaker audio not yet asked for
        self._audio: Any = None
        self._streams: list[Any] = []

    def open(self) -> None:
        """Open the default microphone and speaker, or say in French why not."""
        import pyaudio

        with _native_stderr_silenced():  # ALSA and JACK print dozens of probing lines
            self._audio = pyaudio.PyAudio()
        try:
            self._audio.get_default_input_device_info()
            self._audio.get_default_output_device_info()
            common = dict(format=pyaudio.paInt16, channels=1, rate=CARD_RATE,
                          frames_per_buffer=FRAME_SAMPLES)
            self._streams = [
                self._audio.open(input=True, stream_callback=self._on_input, **common),
                self._audio.open(output=True, stream_callback=self._on_output, **common),
            ]
        except (OSError, ValueError) as exc:
            self.close()
            raise SoundCardError(
                "aucun micro ou haut-parleur utilisable sur cet ordinateur "
                f"({exc}). « voicebot talk » a besoin d'une carte son ; sans elle, essayez "
                "« voicebot chat » (texte) ou « voicebot ask --audio » (fichiers WAV).") from None

    def hang_up(self) -> None:
        self.playout.close()
        self.ended.set()

    def close(self) -> None:
        for stream in self._streams:
            stream.stop_stream()
            stream.close()
        self._streams = []
        if self._audio is not None:
            self._audio.terminate()
            self._audio = None

    # --- PyAudio's threads --------------------------------------------------------------
    def _on_input(self, data: bytes, frames: int, time_info: Any, status: int):
        import pyaudio

        self._loop.call_soon_threadsafe(self._push, AudioFrame(data, CARD_RATE))
        return None, pyaudio.paContinue

    def _on_output(self, data: Any, frames: int, time_info: Any, status: int):
        import pyaudio

        pcm = self._pending
        while len(pcm) < frames * 2:
            pcm += self._upsample.process(AudioFrame(self.playout.pull(), LINE_RATE)).pcm
        out, self._pending = bytes(pcm[: frames * 2]), pcm[frames * 2:]
        return out, pyaudio.paContinue

    def _push(self, frame: AudioFrame) -> None:
        if self.audio_in.full():
            self.audio_in.get_nowait()
        self.audio_in.put_nowait(frame)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
