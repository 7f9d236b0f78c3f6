"""Where to cut a long recording so that no word is cut: in the pauses Silero hears.

Whisper reads 30 s of audio at a time. Given a longer file in one call, faster-whisper
decodes it window after window, and a window whose text fails a check (a repetition, a
low log-probability) is lost whole: a 59 s recording came back as its last 26 words of
232. So audio longer than ``AsrOptions.piece_max_ms`` is cut into pieces no longer than
that, each transcribed on its own and the texts joined in order.

Each cut goes in the longest pause of the second half of the piece being cut (the VAD's
probabilities below ``threshold - 0.15``, Silero's own hysteresis): long pieces, and a
pause that is a breath between sentences rather than a stop inside a word. Audio with
no pause at all there (music, continuous noise) is cut where the probability is lowest.
I/O-free: windows in, sample ranges out.
"""

from __future__ import annotations

import numpy as np

HYSTERESIS = 0.15


def cut_at_pauses(probabilities: np.ndarray, window_samples: int, total_samples: int,
                  max_samples: int, threshold: float) -> list[tuple[int, int]]:
    """Consecutive ``(start, end)`` sample ranges covering ``[0, total_samples)``, each at
    most ``max_samples`` long, cut in the middle of pauses.

    ``probabilities[i]`` is the speech probability of samples ``[i * window_samples,
    (i + 1) * window_samples)``.
    """
    if total_samples <= max_samples:
        return [(0, total_samples)]
    max_windows = max(2, max_samples // window_samples)
    quiet = probabilities < threshold - HYSTERESIS
    cuts = [0]
    start = 0
    while (len(probabilities) - start) * window_samples > max_samples:
        first, last = start + max_windows // 2, start + max_windows  # the second half
        cut = _middle_of_longest_pause(quiet, first, last)
        if cut is None:
            cut = first + int(np.argmin(probabilities[first:last]))
        cuts.append(cut * window_samples)
        start = cut
    bounds = [*cuts, total_samples]
    return [(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def _middle_of_longest_pause(quiet: np.ndarray, first: int, last: int) -> int | None:
    """The window in the middle of the longest quiet run within ``[first, last)`` (the
    later one of two equal runs), or None when nothing there is quiet."""
    best: tuple[int, int] | None = None  # (length, middle)
    run_start = None
    for i in range(first, last + 1):
        if i < last and quiet[i]:
            if run_start is None:
                run_start = i
            continue
        if run_start is not None:
            length = i - run_start
            if best is None or length >= best[0]:
                best = (length, run_start + length // 2)
            run_start = None
    return best[1] if best else None
