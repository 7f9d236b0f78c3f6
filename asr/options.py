"""Options of the speech-recognition stage (Whisper) and of endpointing (VAD)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.errors import SettingsError

CPU_WINDOW_PAD_S = 10.0
"""``window_pad_s`` when it is left automatic and Whisper runs on a CPU (see the field)."""
CUDA_BATCH_MAX = 32
"""``batch_max`` when it is left automatic and Whisper runs on a GPU (see the field)."""


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
    parallel_jobs: int = 1
    """Transcriptions (or batches) the node's ASR scheduler runs at once, each in its own
    worker thread. One Whisper run already keeps ``cpu_threads`` cores busy (on CPU each
    turn is a full 30 s encoder pass), so on 2 cores a second worker is not idle capacity:
    a speculation started there slows the turn beside it (``benchmarks/asr_queue.py
    --speculate``, 8–9 callers 1 s apart: median turn 1.8 s with 1 worker, 3.3 s with 2;
    docs/pipeline.md "ASR scheduling"). Above 1 only with cores to spare or several GPUs."""
    batch_max: int | None = None
    """Most utterances transcribed together in one batched Whisper pass; None chooses:
    1 on CPU, where a batch costs the sum of its utterances or more (each pays the 30 s
    encoder pass; over five runs of benchmarks/asr_queue.py, 0.92–1.17× the CPU time of
    single runs in batches of 4, 1.00–1.42× in batches of 8) and everyone in it waits for
    the last, and ``CUDA_BATCH_MAX`` (32) on a GPU,
    where a batch of 32 costs what one utterance does (Whisper-base-sized, fp16, H100:
    96 ms alone, 2.9 ms each in a batch of 32)."""
    batch_window_ms: int = 50
    """With batches (``batch_max`` above 1), how long the first waiting utterance waits
    for others to join it when the batch is not full (WhisperLive batches clients in a
    50 ms window): longer fills batches better, and adds to every turn's wait."""
    speculative_max_wait_ms: int = 1000
    """A speculative transcription (started at a pause, before the turn is sure to be
    over) still queued after this long is dropped: by then the turn has ended and been
    claimed, or the caller spoke again (the turn ends at most ``vad.short_end_silence_ms``
    - ``vad.tentative_silence_ms`` = 900 ms after the pause)."""

    thread_nice: int = 10
    """Linux scheduling priority (nice, 0–19) of the ASR threads: on a loaded CPU every
    call's audio, VAD and turn-taking (the engine's event loop, the SIP workers) must run
    first, or the whole node falls behind the line's 20 ms clock; a transcription only gets
    later. 0 leaves them equal."""
    window_pad_s: float | None = None
    """Whisper's encoder reads a 30 s window whatever the utterance's length, and on a CPU
    that pass is most of a turn's cost. Above 0, it reads the speech plus this many seconds
    of silence instead (``asr.batch.encoder_frames``); 0 keeps the 30 s window. None
    chooses: ``CPU_WINDOW_PAD_S`` on CPU, 0 on a GPU (where the pass is cheap and windows
    of one size batch together)."""

    piece_max_ms: int = 25_000
    """Audio longer than this (a file given to ``voicebot transcribe``, an utterance that
    ran to ``vad.max_utterance_ms`` set above it) is cut in its pauses into pieces at most
    this long, transcribed one by one and joined (``asr.pauses``). Whisper reads 30 s at a
    time and, given more in one call, lost whole windows: 26 of 232 words came back from a
    59 s recording. From 5 000 to 30 000; 25 s leaves the token budget room for a prompt."""

    def __post_init__(self) -> None:
        if not 5_000 <= self.piece_max_ms <= 30_000:
            raise SettingsError(f"asr.piece_max_ms vaut {self.piece_max_ms} : il faut une durée "
                                "de 5000 à 30000 ms (Whisper lit 30 secondes à la fois).")
        for name in ("parallel_jobs", "batch_window_ms", "speculative_max_wait_ms"):
            minimum = 1 if name == "parallel_jobs" else 0
            if getattr(self, name) < minimum:
                raise SettingsError(f"asr.{name} vaut {getattr(self, name)} : il faut un entier "
                                    f"supérieur ou égal à {minimum}.")
        if not 0 <= self.thread_nice <= 19:
            raise SettingsError(f"asr.thread_nice vaut {self.thread_nice} : il faut un entier "
                                "de 0 (priorité normale) à 19 (la plus basse).")
        if self.batch_max is not None and self.batch_max < 1:
            raise SettingsError(f"asr.batch_max vaut {self.batch_max} : il faut un entier "
                                "supérieur ou égal à 1, ou rien pour le choix automatique "
                                f"(1 sur CPU, {CUDA_BATCH_MAX} sur GPU).")

    def window_pad_for(self, device: str) -> float:
        """``window_pad_s`` with the automatic choice made for ``device``."""
        if self.window_pad_s is not None:
            return self.window_pad_s
        return 0.0 if device == "cuda" else CPU_WINDOW_PAD_S

    def batch_size_for(self, device: str) -> int:
        """``batch_max`` with the automatic choice made for ``device`` (``cpu``/``cuda``)."""
        if self.batch_max is not None:
            return self.batch_max
        return CUDA_BATCH_MAX if device == "cuda" else 1


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
