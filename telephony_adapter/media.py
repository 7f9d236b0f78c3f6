"""A call's audio port on PJSIP's conference bridge: caller frames in, playout frames out.

PJSIP decodes the codec (G.711, G.722) and resamples to this port's clock rate, so what
crosses here is PCM16 mono, 20 ms per frame. Both callbacks run on PJSIP's media clock
thread, never on the event loop: incoming frames reach the loop only through
``loop.call_soon_threadsafe``, and outgoing audio comes from ``Playout.pull``, which is
thread-safe and counts exactly what went to the line (``listened_ms``).

A SWIG director that lets an exception escape takes the whole process down from C++, so
each callback catches everything, logs it once, and carries on with silence.

A port is never freed while the library runs. The clock thread calls every port on the
bridge, connected or not, holding the port's lock while it waits for the GIL; freeing the
Python object releases the GIL inside pjsua2's destructor, the clock thread then runs a
callback on the half-freed object, and the process dies of SIGSEGV (reproduced by
``tests/telephony/test_port_teardown.py``). So ``PjsipAgent`` pools ports: ``unbind`` at the
end of a call, ``bind`` to the next one, and frees them only after stopping the clock.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable

import pjsua2 as pj

from bot.audio import FRAME_MS, SAMPLE_WIDTH, AudioFrame, frame_bytes
from bot.playout import Playout

log = logging.getLogger(__name__)


def audio_format(sample_rate: int) -> pj.MediaFormatAudio:
    fmt = pj.MediaFormatAudio()
    fmt.type = pj.PJMEDIA_TYPE_AUDIO
    fmt.clockRate = sample_rate
    fmt.channelCount = 1
    fmt.bitsPerSample = SAMPLE_WIDTH * 8
    fmt.frameTimeUsec = FRAME_MS * 1000
    return fmt


class LinePort(pj.AudioMediaPort):
    """One direction or both of a call's audio, at one clock rate.

    ``on_frame`` receives what the caller said (omit it for a send-only port); ``playout``
    is drained for what the caller hears (omit it for a receive-only port). A G.722 call
    uses two ports, 16 kHz in and 8 kHz out, so the bot's voice is rendered once at the
    line rate whatever the codec.
    """

    def __init__(
        self,
        name: str,
        sample_rate: int,
        on_frame: Callable[[AudioFrame], None] | None = None,
        playout: Playout | None = None,
    ):
        super().__init__()
        self.sample_rate = sample_rate
        self._silence = b"\0" * frame_bytes(sample_rate)
        self.bind(on_frame, playout)
        self.createPort(name, audio_format(sample_rate))

    def bind(self, on_frame: Callable[[AudioFrame], None] | None,
             playout: Playout | None) -> None:
        """Serve another call: ports are reused, never destroyed while the library runs.
        ``on_frame`` must not hold the call's ``pj.Call``: a callback running when the call
        ends would keep it alive, and free it later on the clock thread."""
        if playout is not None and playout.sample_rate != self.sample_rate:
            raise ValueError(f"playout at {playout.sample_rate} Hz on a {self.sample_rate} Hz port")
        self._on_frame, self._playout, self._failed = on_frame, playout, False

    def unbind(self) -> None:
        """Stop touching the call: silence out, input dropped, until the next ``bind``. A
        callback already running on the clock thread finishes with what it read before
        (each reads its attribute once): one last frame to the ended call, harmless."""
        self._on_frame = self._playout = None

    def onFrameRequested(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (SWIG name)
        pcm = self._silence
        playout = self._playout  # read once: ``unbind`` may run on the SIP thread meanwhile
        try:
            if playout is not None:
                pcm = playout.pull()
        except Exception:
            self._log_once("playout pull failed")
        frame.type = pj.PJMEDIA_FRAME_TYPE_AUDIO
        frame.buf = pj.ByteVector(pcm)
        frame.size = len(pcm)

    def onFrameReceived(self, frame: pj.MediaFrame) -> None:  # noqa: N802 (SWIG name)
        on_frame = self._on_frame
        if on_frame is None or frame.type != pj.PJMEDIA_FRAME_TYPE_AUDIO:
            return
        try:
            pcm = vector_bytes(frame.buf)
            if pcm:
                on_frame(AudioFrame(pcm, self.sample_rate))
        except Exception:
            self._log_once("incoming frame dropped")

    def _log_once(self, what: str) -> None:
        if not self._failed:
            self._failed = True
            log.exception("%s on media port (further errors on this port not logged)", what)


class FrameBatcher:
    """Hands the caller's audio over ``frames`` 20 ms frames at a time (media clock thread).

    Every hand-over wakes the event loop, then crosses the media stream as one send: on a
    node with many calls that per-frame cost, not the audio, is what the CPU pays for. A
    few frames together cost the same as one, for at most ``frames - 1`` frames of delay.
    """

    def __init__(self, deliver: Callable[[AudioFrame], None], frames: int):
        self._deliver = deliver
        self._frames = max(1, frames)
        self._pending: list[bytes] = []

    def __call__(self, frame: AudioFrame) -> None:
        self._pending.append(frame.pcm)
        if len(self._pending) >= self._frames:
            pcm, self._pending = b"".join(self._pending), []
            self._deliver(AudioFrame(pcm, frame.sample_rate))


def vector_bytes(vector: pj.ByteVector) -> bytes:
    """The bytes of a SWIG ``ByteVector`` in one copy.

    ``bytes(vector)`` walks SWIG's iterator one element at a time: 240 µs for a 20 ms
    frame, on the media clock thread, for every frame of every call (a SIP worker spent
    more time there than anywhere else). A ``std::vector`` is three pointers (start,
    finish, end of storage) in every C++ library the wheel can use; the contents are read
    from there, and checked against ``size()`` so that any other layout falls back to the
    slow, sure path.
    """
    size = vector.size()
    if size:
        address = int(vector.this)
        start = ctypes.c_void_p.from_address(address).value
        finish = ctypes.c_void_p.from_address(address + ctypes.sizeof(ctypes.c_void_p)).value
        if start and finish is not None and finish - start == size:
            return ctypes.string_at(start, size)
    return bytes(vector)
