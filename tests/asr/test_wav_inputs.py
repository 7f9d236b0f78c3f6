"""Audio files as people hand them over: every WAV layout is read, everything else gets one
French error naming the file, and ``voicebot transcribe`` goes on with the other files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from asr_signals import FRENCH
from wav_writer import ALAW, PCM, encode, wav_bytes

from bot.audio import AudioFileError, read_wav
from bot.cli.main import main

SOURCE = FRENCH / "vm-tooshort.wav"  # "Votre message est trop court.", 8 kHz 16-bit mono
EXPECTED = ("attendu un fichier WAV (PCM 8, 16, 24 ou 32 bits, flottant, A-law ou μ-law ; "
            "mono ou stéréo ; toute fréquence)")


@pytest.fixture(scope="module")
def samples() -> np.ndarray:
    return np.frombuffer(read_wav(SOURCE).pcm, "<i2")


# tolerance in PCM16 steps: 8-bit keeps the top byte, G.711 is logarithmic
TOLERANCE = {"pcm8": 255, "pcm16": 0, "pcm24": 0, "pcm32": 0, "float32": 0, "float64": 0,
             "alaw": 1024, "mulaw": 1024}


@pytest.mark.parametrize("extensible", [False, True], ids=["plain", "extensible"])
@pytest.mark.parametrize("kind", sorted(TOLERANCE))
def test_every_sample_format_reads_as_the_same_audio(tmp_path: Path, samples: np.ndarray,
                                                     kind: str, extensible: bool):
    tag, bits, data = encode(samples, kind)
    path = tmp_path / f"{kind}.wav"
    path.write_bytes(wav_bytes(data, tag, bits, 1, 8000, extensible=extensible))
    audio = read_wav(path)
    assert audio.sample_rate == 8000
    read = np.frombuffer(audio.pcm, "<i2").astype(np.int32)
    assert len(read) == len(samples)
    assert np.abs(read - samples).max() <= TOLERANCE[kind]


def test_stereo_is_mixed_down_to_mono(tmp_path: Path, samples: np.ndarray):
    left_only = np.stack([samples, np.zeros_like(samples)], axis=1)
    tag, bits, data = encode(left_only, "pcm16")
    path = tmp_path / "stereo.wav"
    path.write_bytes(wav_bytes(data, tag, bits, 2, 8000))
    read = np.frombuffer(read_wav(path).pcm, "<i2").astype(np.int32)
    assert np.abs(read - samples // 2).max() <= 1


def test_a_stream_written_wav_of_unknown_length_is_read_to_its_end(tmp_path: Path,
                                                                  samples: np.ndarray):
    path = tmp_path / "pipe.wav"
    path.write_bytes(wav_bytes(samples.tobytes(), PCM, 16, 1, 8000, data_size=0xFFFFFFFF))
    assert read_wav(path).pcm == samples.tobytes()


def bad_files(samples: np.ndarray) -> dict[str, tuple[bytes, str]]:
    whole = wav_bytes(samples.tobytes(), PCM, 16, 1, 8000)
    return {
        "vide.wav": (b"", f"fichier vide (0 octet) ; {EXPECTED}."),
        "texte.wav": (b"ceci n'est pas du son\n",
                      f"fichier WAV illisible (ce n'est pas un fichier RIFF/WAV) ; {EXPECTED}."),
        "chanson.wav": (b"ID3\x04\x00\x00" + bytes(200), "fichier WAV illisible (ce n'est pas "
                        f"un fichier RIFF/WAV : on dirait un MP3) ; {EXPECTED}."),
        "debut.wav": (whole[:6],
                      f"fichier WAV illisible (en-tête absent ou tronqué) ; {EXPECTED}."),
        "entete.wav": (whole[:30], "fichier WAV illisible (en-tête tronqué : bloc fmt absent ou "
                       f"tronqué) ; {EXPECTED}."),
        "coupe.wav": (whole[:len(whole) // 3], "fichier WAV tronqué (l'en-tête annonce 1,9 s "
                      "d'audio, le fichier s'arrête à 0,6 s) ; recopiez ou réenregistrez le "
                      "fichier en entier."),
        "sans_son.wav": (wav_bytes(b"", PCM, 16, 1, 8000),
                         "le fichier ne contient aucun échantillon audio."),
        "adpcm.wav": (wav_bytes(samples.tobytes()[:1000], 2, 4, 1, 8000),
                      f"fichier WAV illisible (encodage compressé, code 2) ; {EXPECTED}."),
        "alaw16.wav": (wav_bytes(samples.tobytes(), ALAW, 16, 1, 8000),
                       f"fichier WAV illisible (A-law 16 bits) ; {EXPECTED}."),
        "frequence.wav": (wav_bytes(samples.tobytes(), PCM, 16, 1, 1000),
                          "fréquence d'échantillonnage invalide (1000 Hz) ; attendu de 4000 à "
                          "384000 Hz."),
    }


def test_each_bad_file_gets_its_french_reason(tmp_path: Path, samples: np.ndarray):
    for name, (content, reason) in bad_files(samples).items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(AudioFileError) as raised:
            read_wav(path)
        assert str(raised.value) == f"{path} : {reason}"
    with pytest.raises(AudioFileError, match="fichier introuvable"):
        read_wav(tmp_path / "absent.wav")
    with pytest.raises(AudioFileError, match="c'est un dossier"):
        read_wav(tmp_path)


def test_transcribe_reads_any_layout_and_reports_bad_files_on_their_line(
        tmp_path: Path, samples: np.ndarray, capsys, models_dir):
    """Stereo float at 44.1 kHz gives the words the 8 kHz original gives; the bad files get
    their error, in order, and the run exits 2."""
    from bot.audio import AudioFrame, resample

    hifi = np.frombuffer(resample(AudioFrame(samples.tobytes(), 8000), 44100).pcm, "<i2")
    tag, bits, data = encode(np.stack([hifi, hifi], axis=1), "float32")
    good = tmp_path / "stereo_44k_float.wav"
    good.write_bytes(wav_bytes(data, tag, bits, 2, 44100))
    files = [good]
    for name in ("vide.wav", "coupe.wav", "chanson.wav"):
        files.append(tmp_path / name)
        files[-1].write_bytes(bad_files(samples)[name][0])
    code = main(["transcribe", *map(str, files), str(SOURCE)])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 2
    assert [line["file"] for line in lines] == [*map(str, files), str(SOURCE)]
    assert [sorted(line) for line in lines] == [["asr_ms", "audio_ms", "file", "text"]] + \
        [["error", "file"]] * 3 + [["asr_ms", "audio_ms", "file", "text"]]
    assert lines[0]["text"] == lines[4]["text"]
    assert lines[0]["text"].rstrip(".").lower() == "votre message est trop court"
    assert lines[0]["audio_ms"] == 1852
    for line, name in zip(lines[1:4], ("vide.wav", "coupe.wav", "chanson.wav"), strict=True):
        assert line["error"] == f"{tmp_path / name} : {bad_files(samples)[name][1]}"
