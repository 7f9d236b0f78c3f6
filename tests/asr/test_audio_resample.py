"""bot/audio.py: the one resampler (stream and whole buffer) and WAV files at the edges."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from bot.audio import (
    AudioFileError,
    AudioFrame,
    StreamResampler,
    read_wav,
    resample,
    write_wav,
)


def tone(hz: float, seconds: float, rate: int, amplitude: float = 8000) -> AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    return AudioFrame((amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes(), rate)


def samples(frame: AudioFrame) -> np.ndarray:
    return np.frombuffer(frame.pcm, dtype="<i2").astype(np.float64)


def peak_hz(frame: AudioFrame) -> float:
    spectrum = np.abs(np.fft.rfft(samples(frame)))
    return float(np.fft.rfftfreq(frame.samples, 1 / frame.sample_rate)[np.argmax(spectrum)])


def test_each_20ms_line_frame_becomes_one_20ms_asr_frame():
    resampler = StreamResampler(8000, 16000)
    line = tone(440, 1, 8000)
    out = [resampler.process(AudioFrame(line.pcm[i : i + 320], 8000))
           for i in range(0, len(line.pcm), 320)]
    assert {(f.sample_rate, len(f.pcm)) for f in out} == {(16000, 640)}


def test_frame_by_frame_equals_one_pass_so_frame_edges_make_no_click():
    line = tone(1000, 1, 8000)
    whole = StreamResampler(8000, 16000).process(line)
    streamed = StreamResampler(8000, 16000)
    pieces = b"".join(streamed.process(AudioFrame(line.pcm[i : i + 320], 8000)).pcm
                      for i in range(0, len(line.pcm), 320))
    assert pieces == whole.pcm
    # and the signal itself is smooth: no step larger than a 1 kHz sine allows at 16 kHz
    steps = np.abs(np.diff(samples(AudioFrame(pieces, 16000))[64:]))
    assert steps.max() < 8000 * 2 * np.pi * 1000 / 16000 * 1.05


def test_stream_resampling_keeps_a_tone_at_its_pitch_and_level():
    out = StreamResampler(8000, 16000).process(tone(440, 1, 8000))
    assert abs(peak_hz(out) - 440) < 2
    rms = np.sqrt(np.mean(samples(out)[200:] ** 2))
    assert abs(rms - 8000 / np.sqrt(2)) < 100


def test_a_stream_ratio_too_large_for_the_stream_resampler_is_refused():
    with pytest.raises(ValueError, match="use resample"):
        StreamResampler(22050, 8000)


def test_whole_buffer_resampling_brings_a_voice_to_the_line_rate():
    voice = tone(300, 2, 22050)
    line = resample(voice, 8000)
    assert (line.sample_rate, line.samples) == (8000, 16000)
    assert abs(peak_hz(line) - 300) < 2
    assert resample(line, 8000) is line


def test_wav_files_of_any_width_and_channel_count_read_as_pcm16_mono(tmp_path: Path):
    stereo24 = tmp_path / "stereo24.wav"
    left = (np.sin(np.linspace(0, 60, 800)) * 2 ** 22).astype(np.int32)
    frames = np.stack([left, left], axis=1).reshape(-1)
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in frames)
    with wave.open(str(stereo24), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(3)
        w.setframerate(16000)
        w.writeframes(raw)
    audio = read_wav(stereo24)
    assert (audio.sample_rate, audio.samples) == (16000, 800)
    assert np.allclose(samples(audio), left >> 8, atol=1)

    unsigned8 = tmp_path / "u8.wav"
    with wave.open(str(unsigned8), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes([128, 255, 0]))
    assert samples(read_wav(unsigned8)).tolist() == [0, 127 * 256, -128 * 256]


def test_write_then_read_gives_the_same_audio(tmp_path: Path):
    audio = tone(440, 0.5, 8000)
    write_wav(tmp_path / "a.wav", audio)
    assert read_wav(tmp_path / "a.wav") == audio


@pytest.mark.parametrize("content, reason", [
    (b"", "fichier vide (0 octet)"),
    (b"RIFF\x04\x00", "fichier WAV illisible (en-tête absent ou tronqué)"),
    (b"ID3\x03 not a wav", "fichier WAV illisible (ce n'est pas un fichier RIFF/WAV : on dirait un "
                           "MP3)"),
    (b"RIFF\x04\x00\x00\x00WAVE", "fichier WAV illisible (en-tête tronqué : bloc fmt absent ou "
                                  "tronqué)"),
])
def test_a_broken_wav_gets_a_french_error_naming_the_file(tmp_path: Path, content, reason):
    path = tmp_path / "appel.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError) as error:
        read_wav(path)
    assert str(error.value) == (f"{path} : {reason} ; attendu un fichier WAV (PCM 8, 16, 24 ou "
                                "32 bits, flottant, A-law ou μ-law ; mono ou stéréo ; toute "
                                "fréquence).")


def test_a_missing_wav_says_so(tmp_path: Path):
    with pytest.raises(AudioFileError, match="fichier introuvable"):
        read_wav(tmp_path / "absent.wav")
