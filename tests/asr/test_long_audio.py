"""A recording of any length is transcribed whole: cut in its pauses into pieces Whisper
reads in one window, each transcribed, the texts joined in order."""

from __future__ import annotations

import csv
import re
import unicodedata
from pathlib import Path

import numpy as np
from asr_signals import FRENCH

from asr.pauses import cut_at_pauses
from bot.audio import LINE_RATE, AudioFrame, read_wav

WINDOW = 512


def probabilities(pattern: str) -> np.ndarray:
    """One window per character: ``s`` speech, ``.`` silence, ``~`` in between."""
    return np.array([{"s": 0.95, ".": 0.02, "~": 0.4}[c] for c in pattern], np.float32)


def test_short_audio_is_one_piece():
    probs = probabilities("s" * 10)
    assert cut_at_pauses(probs, WINDOW, 10 * WINDOW - 7, 10 * WINDOW, 0.5) == [
        (0, 10 * WINDOW - 7)]


def test_cut_in_the_middle_of_the_longest_pause_of_the_second_half():
    # pieces of at most 20 windows; pauses at 3-4 (first half: not used), 12 and 15-18
    probs = probabilities("sss..sssssss.ss....sssssssssss")
    assert cut_at_pauses(probs, WINDOW, 30 * WINDOW, 20 * WINDOW, 0.5) == [
        (0, 17 * WINDOW), (17 * WINDOW, 30 * WINDOW)]


def test_every_piece_fits_and_the_pieces_cover_the_whole_recording():
    rng = np.random.default_rng(7)
    probs = np.where(rng.random(2000) < 0.8, 0.9, 0.05).astype(np.float32)
    total = 2000 * WINDOW - 100
    pieces = cut_at_pauses(probs, WINDOW, total, 300 * WINDOW, 0.5)
    assert pieces[0][0] == 0 and pieces[-1][1] == total
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert all(0 < end - start <= 300 * WINDOW for start, end in pieces)


def test_speech_without_any_pause_is_cut_where_it_is_least_sure():
    probs = probabilities("s" * 14 + "~" + "s" * 15)
    assert cut_at_pauses(probs, WINDOW, 30 * WINDOW, 20 * WINDOW, 0.5)[0] == (0, 14 * WINDOW)


def words(text: str) -> list[str]:
    bare = unicodedata.normalize("NFKD", text.lower())
    bare = "".join(c for c in bare if not unicodedata.combining(c))
    return re.sub(r"[^a-z0-9' ]+", " ", bare.replace("'", "' ")).split()


def recalled(reference: list[str], heard: list[str]) -> int:
    """Reference words found in order in what was heard (longest common subsequence)."""
    previous = [0] * (len(heard) + 1)
    for word in reference:
        current = [0]
        for j, other in enumerate(heard):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def long_recording(seconds: float, gap_s: float) -> tuple[AudioFrame, str]:
    """The human prompts of tests/data/asr/fr one after the other, like a caller's long
    message with short breaths between sentences."""
    with (FRENCH / "transcripts.tsv").open(encoding="utf-8") as table:
        rows = list(csv.DictReader(table, delimiter="\t"))
    pcm, texts, total_ms = [], [], 0.0
    gap = bytes(2 * int(LINE_RATE * gap_s))
    for row in rows:
        audio = read_wav(FRENCH / row["file"])
        pcm += [audio.pcm, gap]
        texts.append(row["text"])
        total_ms += audio.duration_ms + gap_s * 1000
        if total_ms >= seconds * 1000:
            break
    return AudioFrame(b"".join(pcm), LINE_RATE), " ".join(texts)


def test_a_72_second_recording_is_transcribed_whole_without_losing_its_middle(
        tmp_path: Path, transcriber):
    """In one call Whisper returned 125 of these 188 words, 35 % of the middle third."""
    audio, script = long_recording(71.0, gap_s=0.15)
    assert audio.duration_ms > 70_000
    reference = words(script)
    transcript = transcriber.transcribe(audio)
    heard = words(transcript.text)
    assert transcript.audio_ms == audio.duration_ms
    assert transcript.rejected is None
    assert recalled(reference, heard) >= 0.85 * len(reference)
    thirds = [reference[k * len(reference) // 3:(k + 1) * len(reference) // 3] for k in range(3)]
    for third in thirds:
        assert recalled(third, heard) >= 0.8 * len(third)
    assert abs(len(heard) - len(reference)) <= 0.1 * len(reference)


def test_a_long_silence_is_still_no_speech(transcriber):
    silence = AudioFrame(bytes(2 * LINE_RATE * 40), LINE_RATE)
    transcript = transcriber.transcribe(silence)
    assert transcript.text == ""
    assert transcript.rejected == "silence"
    assert transcript.audio_ms == 40_000
