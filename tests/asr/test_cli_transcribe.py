"""``voicebot transcribe FILE...``: one exact JSON line per file, errors included."""

from __future__ import annotations

import json
from pathlib import Path

from asr_signals import FRENCH

from bot.cli.main import main


def test_one_json_line_per_file_and_a_broken_file_does_not_stop_the_run(
        tmp_path: Path, capsys, models_dir):
    broken = tmp_path / "casse.wav"
    broken.write_bytes(b"pas du tout un wav")
    good = FRENCH / "vm-tooshort.wav"
    code = main(["transcribe", str(good), str(broken), str(FRENCH / "queue-youarenext.wav")])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2  # a person's mistake: the other files are still transcribed
    assert [list(line) for line in lines] == [
        ["file", "text", "asr_ms", "audio_ms"], ["file", "error"],
        ["file", "text", "asr_ms", "audio_ms"]]
    assert lines[0]["text"].rstrip(".") == "votre message est trop court"
    assert lines[0]["audio_ms"] == 1852
    assert lines[1] == {"file": str(broken), "error": (
        f"{broken} : fichier WAV illisible (ce n'est pas un fichier RIFF/WAV) ; attendu un "
        "fichier WAV (PCM 8, 16, 24 ou 32 bits, flottant, A-law ou μ-law ; mono ou stéréo ; "
        "toute fréquence).")}
    assert lines[2]["text"] == "votre appel sera le prochain à être traité."


def test_all_files_readable_exits_zero(capsys, models_dir):
    assert main(["transcribe", str(FRENCH / "vm-isonphone.wav")]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "est présentement en ligne."
