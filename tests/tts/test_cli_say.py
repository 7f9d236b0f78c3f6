"""``voicebot say "texte" -o out.wav``: a WAV at the line's rate, or the asked one."""

from __future__ import annotations

import json
from pathlib import Path

from bot.audio import read_wav
from bot.cli.main import main


def test_say_writes_an_8khz_wav_and_reports_it(tmp_path: Path, capsys):
    out = tmp_path / "accueil.wav"
    assert main(["say", "Bonjour, vous êtes bien à la Caf.", "-o", str(out)]) == 0
    audio = read_wav(out)
    assert audio.sample_rate == 8000 and audio.duration_ms > 1000
    report = json.loads(capsys.readouterr().err)
    assert report["file"] == str(out) and report["audio_ms"] == audio.duration_ms
    assert report["voice"].startswith("espeak-ng-")


def test_sample_rate_and_speaking_rate_options(tmp_path: Path):
    normal, slow = tmp_path / "normal.wav", tmp_path / "lent.wav"
    text = "Votre numéro allocataire figure sur vos courriers."
    assert main(["say", text, "-o", str(normal), "--sample-rate", "16000"]) == 0
    assert main(["say", text, "-o", str(slow), "--sample-rate", "16000", "--rate", "0.7"]) == 0
    assert read_wav(normal).sample_rate == 16000
    assert read_wav(slow).duration_ms > read_wav(normal).duration_ms * 1.25


def test_an_unwritable_output_is_a_french_error(tmp_path: Path, capsys):
    target = tmp_path / "absent" / "x.wav"
    assert main(["say", "Bonjour.", "-o", str(target)]) == 2
    assert capsys.readouterr().err.startswith(f"Erreur : Impossible d'écrire {target}")
