"""faster-whisper: an utterance's PCM16 audio in, its French text out, or no text at all.

Whisper invents text from silence ("Sous-titres réalisés par la communauté d'Amara.org"),
loops on 8 kHz audio (192 words from a 3.6 s clip was measured), and picks Polish on a
short French sample. So: French is forced, decoding is greedy-deterministic with a token
budget proportional to the audio, Silero removes what is not speech before Whisper sees
it, and the result is checked (repetition, words per second, known hallucinations) before
anyone acts on it. A dropped transcript says why in ``rejected``.

``transcribe`` is synchronous and does all the work, including the lazy segment generator,
in the calling thread: the pipeline runs it in ``asyncio.to_thread``.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.model_files import load_whisper
from asr.options import AsrOptions
from asr.vad import SileroModel
from bot.audio import ASR_RATE, AudioFrame, resample

MAX_DECODE_TOKENS = 448  # Whisper's context: prompt + generated tokens
WINDOW_S = 30.0  # Whisper decodes 30 s windows; the token budget applies per window

# Whole transcripts Whisper produces from silence or noise (subtitle credits in its
# training data). Compared after lower-casing and removing punctuation.
HALLUCINATIONS = frozenset({
    "sous-titres réalisés par la communauté d'amaraorg",
    "sous-titres réalisés para la communauté d'amaraorg",
    "sous-titrage st' 501",
    "sous-titrage st 501",
    "sous-titrage société radio-canada",
    "merci d'avoir regardé cette vidéo",
    "merci d'avoir regardé",
    "merci de votre attention",
    "abonnez-vous",
    "sous-titres par la communauté d'amaraorg",
})


@dataclass(frozen=True)
class Transcript:
    text: str
    """The caller's words; empty when nothing was said (or nothing trustworthy was heard)."""
    asr_ms: int
    """Wall time spent in this call, VAD included."""
    audio_ms: int
    speech_ms: int
    """Audio Silero heard as speech (``audio_ms`` when the VAD cut is off)."""
    rejected: str | None = None
    """Why there is no text: ``silence``, ``no_speech``, ``repetition``, ``too_many_words``
    or ``hallucination``; None when ``text`` is the transcript."""
    avg_logprob: float | None = None
    """Mean token log-probability of the kept segments (closer to 0 is surer)."""

    @property
    def no_speech(self) -> bool:
        return not self.text


class Transcriber:
    """A loaded Whisper model and the Silero gate, shared by all calls (thread-safe)."""

    def __init__(self, model, vad: SileroModel, options: AsrOptions):
        self._model = model
        self._vad = vad
        self.options = options

    @classmethod
    def load(cls, options: AsrOptions, models_dir: Path) -> Transcriber:
        """Load the configured model (AsrModelError with a French message if it cannot)."""
        return cls(load_whisper(options, models_dir), SileroModel.load(), options)

    def with_options(self, options: AsrOptions) -> Transcriber:
        """The same loaded model with other decoding options (``model``/``device`` ignored)."""
        return Transcriber(self._model, self._vad, options)

    def transcribe(self, audio: AudioFrame, prompt: str | None = None) -> Transcript:
        """Transcribe one utterance (8 kHz, 16 kHz or any rate; resampled to 16 kHz here)."""
        started = time.monotonic()
        o = self.options
        audio16 = resample(audio, ASR_RATE)
        audio_ms = audio16.duration_ms

        def result(text: str = "", speech_ms: int = 0, rejected: str | None = None,
                   avg_logprob: float | None = None) -> Transcript:
            asr_ms = round((time.monotonic() - started) * 1000)
            return Transcript(text, asr_ms, audio_ms, speech_ms, rejected, avg_logprob)

        if audio16.samples < ASR_RATE // 10:  # under 100 ms: not even a "oui"
            return result(rejected="silence")
        speech_ms = audio_ms
        if o.vad_filter:
            speech_ms = self._vad.speech_ms(audio16, o.vad_threshold)
            if speech_ms < o.min_speech_ms:
                return result(speech_ms=speech_ms, rejected="silence")

        samples = np.frombuffer(audio16.pcm, dtype="<i2").astype(np.float32) / 32768.0
        segments, _info = self._model.transcribe(
            samples,
            language=o.language,
            task="transcribe",
            beam_size=o.beam_size,
            temperature=list(o.temperatures),
            compression_ratio_threshold=o.compression_ratio_threshold,
            log_prob_threshold=o.log_prob_threshold,
            no_speech_threshold=o.no_speech_threshold,
            condition_on_previous_text=False,
            initial_prompt=prompt or None,
            without_timestamps=True,
            no_repeat_ngram_size=o.no_repeat_ngram_size,
            max_new_tokens=self._token_budget(audio_ms, prompt),
            vad_filter=o.vad_filter,
            vad_parameters={
                "threshold": o.vad_threshold,
                "min_speech_duration_ms": o.min_speech_ms,
                "speech_pad_ms": 200,
            },
        )
        kept = []
        repetition = False
        for segment in segments:  # decoding happens here, in this thread
            if segment.compression_ratio > o.compression_ratio_threshold:
                repetition = True
                continue
            if segment.text.strip():
                kept.append(segment)
        text = " ".join(s.text.strip() for s in kept).strip()
        if not text:
            return result(speech_ms=speech_ms, rejected="repetition" if repetition else "no_speech")
        avg_logprob = float(np.mean([s.avg_logprob for s in kept]))
        if _normalized(text) in HALLUCINATIONS:
            return result(speech_ms=speech_ms, rejected="hallucination", avg_logprob=avg_logprob)
        max_words = math.ceil(o.max_words_per_second * audio_ms / 1000) + 2
        if len(text.split()) > max_words:
            return result(speech_ms=speech_ms, rejected="too_many_words",
                          avg_logprob=avg_logprob)
        return result(text, speech_ms=speech_ms, avg_logprob=avg_logprob)

    def _token_budget(self, audio_ms: int, prompt: str | None) -> int:
        """Tokens Whisper may generate per 30 s window: enough for fast speech, not a loop."""
        window_s = min(audio_ms / 1000, WINDOW_S)
        wanted = math.ceil(self.options.max_tokens_per_second * window_s) + 8
        prompt_tokens = 0
        if prompt:
            prompt_tokens = min(len(self._model.hf_tokenizer.encode(" " + prompt.strip()).ids),
                                MAX_DECODE_TOKENS // 2 - 1)
        room = MAX_DECODE_TOKENS - prompt_tokens - 8  # <|startofprev|>, SOT, language, task…
        return max(1, min(wanted, room))


def _normalized(text: str) -> str:
    return re.sub(r"[^\w' -]", "", text.casefold()).strip()
