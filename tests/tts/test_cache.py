"""The reply audio cache: keyed by (text, voice, rate, output rate), atomic, fast."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from bot.audio import AudioFrame
from tts.cache import AudioCache


def test_render_all_then_get_returns_line_rate_audio(tmp_path: Path, espeak):
    cache = AudioCache(tmp_path, espeak)
    report = cache.render_all(["Bonjour, vous êtes bien à la Caf.", "Au revoir."])
    assert (report.rendered, report.reused) == (2, 0)
    audio = cache.get("Bonjour, vous êtes bien à la Caf.")
    assert audio is not None and audio.sample_rate == 8000
    assert 1000 < audio.duration_ms < 4000
    assert cache.render_all(["Au revoir."]).reused == 1


def test_a_cached_entry_is_the_synthesised_audio_of_every_sentence(tmp_path: Path, espeak):
    cache = AudioCache(tmp_path, espeak)
    text = "Première phrase. Deuxième phrase."
    audio = cache.render(text)
    expected = sum(f.duration_ms for f in espeak.synthesize(text))
    assert abs(audio.duration_ms - expected) <= 2


def test_unknown_text_is_a_miss(tmp_path: Path, espeak):
    assert AudioCache(tmp_path, espeak).get("Jamais dit.") is None


def test_whitespace_does_not_change_the_key_but_words_voice_and_rates_do(tmp_path, espeak):
    cache = AudioCache(tmp_path, espeak)
    assert cache.key("Bonjour  à vous.\n") == cache.key(" Bonjour à vous.")
    keys = {
        cache.key("Bonjour à vous."),
        cache.key("Bonjour à tous."),
        AudioCache(tmp_path, dataclasses.replace(espeak, rate=0.9)).key("Bonjour à vous."),
        AudioCache(tmp_path, dataclasses.replace(espeak, voice="fr-be")).key("Bonjour à vous."),
        AudioCache(tmp_path, espeak, sample_rate=16000).key("Bonjour à vous."),
    }
    assert len(keys) == 5


def test_entries_are_written_whole_with_no_temporary_file_left(tmp_path: Path, espeak):
    cache = AudioCache(tmp_path, espeak)
    cache.put("Texte.", AudioFrame(b"\x01\x00" * 800, 8000))
    assert [p.name for p in tmp_path.iterdir()] == [cache.path("Texte.").name]
    assert cache.get("Texte.") == AudioFrame(b"\x01\x00" * 800, 8000)


def test_prune_keeps_exactly_the_published_texts(tmp_path: Path, espeak):
    cache = AudioCache(tmp_path, espeak)
    cache.render_all(["Ancienne réponse.", "Réponse gardée."])
    report = cache.render_all(["Réponse gardée.", "Nouvelle réponse."], prune=True)
    assert (report.rendered, report.reused, report.removed) == (1, 1, 1)
    assert cache.get("Ancienne réponse.") is None
    assert cache.get("Nouvelle réponse.") is not None
