"""Options of the speech-recognition stage (Whisper) and of endpointing (VAD)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AsrOptions:
    model: str = "whisper-base"
    """A directory holding a CTranslate2 Whisper model, a name under the models directory,
    or a faster-whisper size name (``small``, ``large-v3``) when a hub is reachable."""
    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    compute_type: str = "int8"
    """CTranslate2 compute type: ``int8`` on CPU, ``float16`` or ``int8_float16`` on GPU."""
    cpu_threads: int = 2
    """Threads per transcription on CPU; more than the cores only adds contention."""
    beam_size: int = 5
    language: str = "fr"
    """Forced: auto-detection mislabels short French telephone speech."""
    temperatures: tuple[float, ...] = (0.0,)
    """Decoding temperatures tried in turn. Only 0.0 by default: fallback samples at random
    (the same audio gives different words) and, on 8 kHz audio, took up to 23 s."""
    no_repeat_ngram_size: int = 0
    """Forbid repeating any token n-gram of this size (0 = off). Callers repeat themselves
    ("non non non"), so loops are caught by the checks below instead."""
    compression_ratio_threshold: float = 2.4
    """A segment whose text compresses better than this (gzip ratio) is a repetition loop."""
    max_tokens_per_second: float = 12.0
    """Decoding stops after this many tokens per second of audio (French speech needs ~6)."""
    max_words_per_second: float = 7.0
    """A transcript with more words per second of audio (plus 2) is a loop, and is dropped."""
    no_speech_threshold: float = 0.6
    """Whisper's own silence detector: a segment above this ``no_speech_prob`` whose average
    log-probability is also below ``log_prob_threshold`` is dropped."""
    log_prob_threshold: float = -1.0
    vad_filter: bool = True
    """Cut non-speech out with Silero before decoding: Whisper invents sentences from silence,
    line noise and DTMF tones; when Silero finds no speech at all, Whisper is not run."""
    vad_threshold: float = 0.5
    """Silero speech probability above which a window counts as speech for that cut."""
    min_speech_ms: int = 150
    """Speech shorter than this (a click) does not reach Whisper."""


@dataclass(frozen=True)
class VadOptions:
    threshold: float = 0.5
    """Silero speech probability above which a window counts as speech."""
    min_speech_ms: int = 200
    """Speech shorter than this (a click, a cough) does not start an utterance."""
    end_silence_ms: int = 600
    """Trailing silence that ends the caller's turn once ``short_utterance_ms`` of speech
    was heard. On the pause set (benchmarks/voice.py: callers pausing 300–900 ms
    mid-sentence) 600 ms alone cut off 2 in 3 of them, 1200 ms none but made every caller
    wait 1.3 s; 600 ms with the rule below cut off 2 % and waited 700 ms (p50)."""
    no_input_timeout_ms: int = 8000
    """Silence after a prompt before the caller is prompted again."""
    max_utterance_ms: int = 20000
    """An utterance is cut here and processed, so a noisy line cannot hold the turn."""
    pre_roll_ms: int = 200
    """Audio kept from before the start of speech, so the first syllable reaches Whisper."""
    short_utterance_ms: int = 2500
    """Below this much speech the turn ends after ``short_end_silence_ms`` instead (0 = off):
    a caller who stops that early ("mon numéro c'est…") is usually looking for the words."""
    short_end_silence_ms: int = 1200
    tentative_silence_ms: int = 300
    """Silence after which ``SpeechPaused`` offers the utterance so far, so transcription can
    start while the end of turn is still unsure (0 = never); ``SpeechResumed`` withdraws it."""
    barge_in_ms: int = 600
    """Confident speech the caller must produce while the bot talks before the bot stops:
    "oui", "d'accord", "hm" and coughs are shorter, so they never cut an answer."""
    barge_in_threshold: float = 0.8
    """Speech probability a frame needs to count toward ``barge_in_ms``: stricter than
    ``threshold`` so that line echo of the bot's own voice does not cut it."""
