"""faster-whisper: an utterance's PCM16 audio in, its French text out, or no text at all.

Whisper invents text from silence ("Sous-titres réalisés par la communauté d'Amara.org"),
loops on 8 kHz audio (192 words from a 3.6 s clip was measured), and picks Polish on a
short French sample. So: French is forced, decoding is greedy-deterministic with a token
budget proportional to the audio, Silero removes what is not speech before Whisper sees
it, and the result is checked (repetition, words per second, known hallucinations) before
anyone acts on it. A dropped transcript says why in ``rejected``.

``transcribe`` is synchronous and does all the work, including the lazy segment generator,
in the calling thread: the pipeline runs it in ``asyncio.to_thread``, or through the
node's ``asr.scheduler.AsrScheduler``. ``transcribe_batch`` does the same for several
utterances in shared Whisper passes (``asr.batch``), with the same gate and checks.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from asr.batch import decode_batch
from asr.model_files import load_whisper
from asr.options import AsrOptions
from asr.pauses import cut_at_pauses
from asr.vad import WINDOW_SAMPLES as VAD_WINDOW_SAMPLES
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

    @property
    def device(self) -> str:
        """Where Whisper runs, ``cpu`` or ``cuda`` (``auto`` resolved at loading)."""
        return getattr(getattr(self._model, "model", None), "device", "cpu")

    def transcribe(self, audio: AudioFrame, prompt: str | None = None) -> Transcript:
        """Transcribe one utterance or a recording of any length (any rate; resampled to
        16 kHz here). Audio over ``piece_max_ms`` is cut in its pauses (``asr.pauses``)."""
        if self.options.window_pad_for(self.device) > 0 or self._is_long(audio):
            return self.transcribe_batch([audio], [prompt])[0]  # the short encoder window
        started = time.monotonic()
        heard = self._listen(audio)
        if heard.rejected:
            return heard.transcript(started)
        return self._decode_alone(heard, prompt, started)

    def transcribe_batch(self, audios: Sequence[AudioFrame],
                         prompts: Sequence[str | None]) -> list[Transcript]:
        """Transcribe several utterances in shared Whisper passes; the same transcripts as
        ``transcribe`` on each (``asr.batch`` says how, and where it decodes one alone).

        Each ``asr_ms`` is the wall time of the whole batch: what each caller waited. Audio
        over ``piece_max_ms`` goes through as pieces cut in its pauses, joined again after.
        """
        pieces: list[AudioFrame] = []
        piece_prompts: list[str | None] = []
        owners: list[int] = []
        for owner, (audio, prompt) in enumerate(zip(audios, prompts, strict=True)):
            for piece in self._pieces(audio):
                pieces.append(piece)
                piece_prompts.append(prompt)
                owners.append(owner)
        done = self._transcribe_pieces(pieces, piece_prompts)
        if len(pieces) == len(audios):
            return done
        return [_joined([t for t, o in zip(done, owners, strict=True) if o == owner])
                for owner in range(len(audios))]

    def _is_long(self, audio: AudioFrame) -> bool:
        return audio.duration_ms > self.options.piece_max_ms

    def _pieces(self, audio: AudioFrame) -> list[AudioFrame]:
        """``audio`` itself, or at 16 kHz in pieces cut in its pauses when it is long."""
        if not self._is_long(audio):
            return [audio]
        audio16 = resample(audio, ASR_RATE)
        ranges = cut_at_pauses(self._vad.probabilities(audio16), VAD_WINDOW_SAMPLES,
                               audio16.samples, self.options.piece_max_ms * ASR_RATE // 1000,
                               self.options.vad_threshold)
        return [AudioFrame(audio16.pcm[2 * a : 2 * b], ASR_RATE) for a, b in ranges]

    def _transcribe_pieces(self, audios: Sequence[AudioFrame],
                           prompts: Sequence[str | None]) -> list[Transcript]:
        started = time.monotonic()
        heard = [self._listen(audio) for audio in audios]
        todo = [i for i, h in enumerate(heard) if not h.rejected]
        decoded = decode_batch(
            self._model, [heard[i].samples for i in todo],
            [self._decoding(heard[i].audio_ms, prompts[i]) for i in todo],
            window_pad_s=self.options.window_pad_for(self.device))
        segments: dict[int, list | None] = dict(zip(todo, decoded, strict=True))
        transcripts = []
        for i, one in enumerate(heard):
            if one.rejected:
                transcripts.append(one.transcript(started))
            elif segments[i] is None:
                transcripts.append(self._decode_alone(one, prompts[i], started))
            else:
                transcripts.append(self._judge(one, segments[i], started))
        return transcripts

    def _listen(self, audio: AudioFrame) -> _Heard:
        """Resample, then the Silero gate: what is not speech never reaches Whisper."""
        o = self.options
        audio16 = resample(audio, ASR_RATE)
        audio_ms = audio16.duration_ms
        if audio16.samples < ASR_RATE // 10:  # under 100 ms: not even a "oui"
            return _Heard(audio_ms, 0, None, rejected="silence")
        speech_ms = audio_ms
        if o.vad_filter:
            speech_ms = self._vad.speech_ms(audio16, o.vad_threshold)
            if speech_ms < o.min_speech_ms:
                return _Heard(audio_ms, speech_ms, None, rejected="silence")
        samples = np.frombuffer(audio16.pcm, dtype="<i2").astype(np.float32) / 32768.0
        return _Heard(audio_ms, speech_ms, samples)

    def _decoding(self, audio_ms: int, prompt: str | None) -> dict[str, Any]:
        """faster-whisper's arguments for one utterance: French, deterministic, budgeted."""
        o = self.options
        return dict(
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

    def _decode_alone(self, heard: _Heard, prompt: str | None, started: float) -> Transcript:
        segments, _info = self._model.transcribe(heard.samples,
                                                 **self._decoding(heard.audio_ms, prompt))
        return self._judge(heard, segments, started)  # decoding happens there, in this thread

    def _judge(self, heard: _Heard, segments: Iterable, started: float) -> Transcript:
        """The checks every transcript passes before anyone acts on it: repetition loops,
        subtitle credits, more words than a person can say."""
        o = self.options
        kept = []
        repetition = False
        for segment in segments:
            if segment.compression_ratio > o.compression_ratio_threshold:
                repetition = True
                continue
            if segment.text.strip():
                kept.append(segment)
        text = " ".join(s.text.strip() for s in kept).strip()
        if not text:
            return heard.transcript(started, rejected="repetition" if repetition else "no_speech")
        avg_logprob = float(np.mean([s.avg_logprob for s in kept]))
        if _normalized(text) in HALLUCINATIONS:
            return heard.transcript(started, rejected="hallucination", avg_logprob=avg_logprob)
        max_words = math.ceil(o.max_words_per_second * heard.audio_ms / 1000) + 2
        if len(text.split()) > max_words:
            return heard.transcript(started, rejected="too_many_words", avg_logprob=avg_logprob)
        return heard.transcript(started, text=text, avg_logprob=avg_logprob)

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


@dataclass(frozen=True)
class _Heard:
    """An utterance after the Silero gate, before Whisper."""

    audio_ms: int
    speech_ms: int
    samples: np.ndarray | None
    """16 kHz float32 audio for Whisper; None when the gate already decided."""
    rejected: str | None = None

    def transcript(self, started: float, text: str = "", rejected: str | None = None,
                   avg_logprob: float | None = None) -> Transcript:
        asr_ms = round((time.monotonic() - started) * 1000)
        return Transcript(text, asr_ms, self.audio_ms, self.speech_ms,
                          rejected or self.rejected, avg_logprob)


def _joined(parts: Sequence[Transcript]) -> Transcript:
    """One transcript from the pieces of a long recording, in order."""
    if len(parts) == 1:
        return parts[0]
    kept = [t for t in parts if t.text]
    text = " ".join(t.text for t in kept)
    rejected = None if kept else next((t.rejected for t in parts if t.rejected), "silence")
    weights = [t.speech_ms or 1 for t in kept if t.avg_logprob is not None]
    logprobs = [t.avg_logprob for t in kept if t.avg_logprob is not None]
    avg_logprob = float(np.average(logprobs, weights=weights)) if logprobs else None
    return Transcript(text, max(t.asr_ms for t in parts), sum(t.audio_ms for t in parts),
                      sum(t.speech_ms for t in parts), rejected, avg_logprob)


def _normalized(text: str) -> str:
    return re.sub(r"[^\w' -]", "", text.casefold()).strip()
