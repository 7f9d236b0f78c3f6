"""The voice commands scripts and developers use: ``voicebot ask --audio`` and ``voicebot talk``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT, Settings

VOICEBOT = str(PROJECT_ROOT / ".venv" / "bin" / "voicebot")
QUESTION = PROJECT_ROOT / "tests" / "data" / "asr" / "fr" / "conf-invalidpin.wav"
ASK_KEYS = {"input", "motif", "action", "confidence", "reply"}
VOICE_KEYS = {"transcript", "asr_ms", "nlu_ms", "tts_ms", "response_ms", "reply_audio_ms"}


def env_for(settings: Settings) -> dict[str, str]:
    return dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(settings.paths.state_dir),
                VOICEBOT_PATHS_GENERATED_DIR=str(settings.paths.generated_dir))


def test_ask_audio_answers_each_file_and_reports_a_broken_one_on_its_line(
        published_settings: Settings, tmp_path: Path):
    broken = tmp_path / "cassé.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEpas du tout un fichier audio")
    stdin = f"{QUESTION}\n{broken}\n\n{QUESTION}\n"
    run = subprocess.run([VOICEBOT, "ask", "--audio"], input=stdin, capture_output=True,
                         text=True, env=env_for(published_settings), timeout=300)
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert run.returncode == 2, run.stderr[-2000:]
    assert len(lines) == 3  # the blank line is skipped, the broken file keeps its place
    first, error, again = lines
    assert set(first) == ASK_KEYS | VOICE_KEYS
    assert first["input"] == str(QUESTION) and first["action"] == "answer" and first["motif"]
    assert first["transcript"] and first["reply_audio_ms"] > 1000
    assert first["response_ms"] >= first["asr_ms"] > 0
    assert error["input"] == str(broken) and "cassé.wav" in error["error"]
    assert again["motif"] == first["motif"]  # each file is a fresh conversation


def test_talk_without_a_sound_card_says_so_in_french_and_fails(tmp_path: Path):
    import pyaudio

    from bot.soundcard import _native_stderr_silenced

    with _native_stderr_silenced():
        audio = pyaudio.PyAudio()
    try:
        has_card = any(audio.get_device_info_by_index(i).get("maxInputChannels", 0) > 0
                       for i in range(audio.get_device_count()))
    finally:
        audio.terminate()
    if has_card:
        pytest.skip("this machine has a microphone: the no-device path cannot be shown here")
    run = subprocess.run([VOICEBOT, "talk"], stdin=subprocess.DEVNULL, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2
    assert "aucun micro ou haut-parleur" in run.stderr
    assert "voicebot chat" in run.stderr  # and what to use instead
