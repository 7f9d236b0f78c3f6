"""Several utterances through Whisper in one batched CTranslate2 pass, decoded as one would be.

``WhisperModel.transcribe`` takes one utterance; a batch of them shares the encoder and
decoder calls, which on a GPU costs little more than one (a Whisper-base-sized model in
fp16 on one H100: 96 ms for an utterance alone, 2.9 ms per utterance in a batch of 32).
This module redoes, for a batch, what ``WhisperModel.transcribe`` does for one utterance
of at most 30 s with the options ``Transcriber`` passes: the Silero cut, the log-Mel
features padded to the 30 s window, the prompt, beam search at temperature 0, the
no-speech skip, and the segment it yields. faster-whisper's own helpers do each step, so
the result is the single call's, token for token, with two exceptions that CTranslate2
imposes and that are handled rather than approximated:

- ``max_length`` is one number per ``generate`` call, and the token budget is per
  utterance (``Transcriber`` scales it with the audio). The batch decodes with the largest
  budget and asks for every finished hypothesis (``num_hypotheses = beam_size``, which
  does not change the search). Beam search stops an utterance at the step its
  ``beam_size``-th hypothesis finishes, which is the longest one returned; if that step
  comes before the utterance's own last step, its own budget would have run the very same
  search. Otherwise (a loop, or speech faster than the budget allows) the utterance is
  handed back to be decoded alone.
- CTranslate2 batches only prompts whose ``<|startoftranscript|>`` is at the same place,
  so utterances are grouped by prompt length, one ``generate`` per group.

Anything else the single call would do differently is handed back too: audio over 30 s
after the cut (two windows), sampling (a first temperature above 0), and a result that
fails faster-whisper's thresholds when ``temperatures`` offers a fallback. ``None`` in the
result means "decode this one alone".

The only remaining difference is arithmetic: a batched matrix product may round
differently from a single one. On CPU (int8) the recordings in tests/data give the same
text and the same ``avg_logprob``, with beam 5 and greedy; on a GPU in fp16 a near tie
between two tokens could in principle go the other way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from faster_whisper.audio import pad_or_trim
from faster_whisper.tokenizer import Tokenizer
from faster_whisper.transcribe import Segment, get_compression_ratio, get_suppressed_tokens
from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

DecodeKwargs = Mapping[str, Any]
"""The keyword arguments ``Transcriber`` gives ``WhisperModel.transcribe`` for one utterance."""

# What this module reproduces. A keyword outside this set (or a value other than the one
# expected) means the single call would do something this module does not: fail loudly
# rather than decode differently.
_KNOWN = frozenset({
    "language", "task", "beam_size", "temperature", "compression_ratio_threshold",
    "log_prob_threshold", "no_speech_threshold", "condition_on_previous_text",
    "initial_prompt", "without_timestamps", "no_repeat_ngram_size", "max_new_tokens",
    "vad_filter", "vad_parameters",
})
_MAX_INITIAL_TIMESTAMP_S = 1.0  # faster-whisper's default, as the single call uses it
_SUPPRESS_TOKENS = (-1,)  # idem


def decode_batch(model, audios: Sequence[np.ndarray], kwargs: Sequence[DecodeKwargs],
                 window_pad_s: float = 0.0) -> list[list[Segment] | None]:
    """Decode each 16 kHz float32 utterance with its keyword arguments, in shared passes.

    Returns, per utterance, the segments ``model.transcribe(audio, **kwargs)`` would
    yield, or None when only that call can give them (see the module docstring).
    ``window_pad_s`` above 0 encodes a shorter window than Whisper's 30 s: the speech plus
    that much silence (``encoder_frames``).
    """
    results: list[list[Segment] | None] = [None] * len(audios)
    groups: dict[tuple, list[_Item]] = {}
    for index, (audio, options) in enumerate(zip(audios, kwargs, strict=True)):
        _check(options)
        if list(options["temperature"])[0] != 0:
            continue  # sampling is random: decoded alone
        window = _window(model, audio, options, window_pad_s)
        if window is None:
            continue
        features, content_frames = window
        if content_frames <= 0:
            results[index] = []
            continue
        prompt = _prompt(model, _tokenizer(model, options), options)
        shared = (len(prompt), options["beam_size"], options["no_repeat_ngram_size"],
                  options["language"], options["task"],
                  features.shape[-1])  # what one generate() call fixes
        groups.setdefault(shared, []).append(
            _Item(index, features, content_frames, prompt, options))
    for group in groups.values():
        for item, segments in zip(group, _decode_group(model, group), strict=True):
            results[item.index] = segments
    return results


@dataclass(frozen=True)
class _Item:
    index: int
    """Position in the caller's batch."""
    features: np.ndarray
    """The log-Mel window, padded to 30 s or to ``encoder_frames``."""
    content_frames: int
    """Feature frames of real audio in ``features`` (100 per second)."""
    prompt: list[int]
    options: DecodeKwargs


def _check(options: DecodeKwargs) -> None:
    unknown = set(options) - _KNOWN
    if unknown or options["condition_on_previous_text"] or not options["without_timestamps"]:
        raise ValueError(f"batched decoding does not reproduce these options: {sorted(unknown)} "
                         f"{dict(options)}")


def _window(model, audio: np.ndarray, options: DecodeKwargs,
            window_pad_s: float) -> tuple[np.ndarray, int] | None:
    """The log-Mel window to encode and its frames of audio (0: it would decode nothing);
    None if it would need more than one 30 s window."""
    if options["vad_filter"]:
        chunks = get_speech_timestamps(audio, VadOptions(**options["vad_parameters"]))
        audio = np.concatenate(collect_chunks(audio, chunks)[0], axis=0)
    features = model.feature_extractor(audio)
    content_frames = features.shape[-1] - 1
    if content_frames > model.feature_extractor.nb_max_frames:
        return None
    length = encoder_frames(content_frames, window_pad_s, model.feature_extractor.nb_max_frames)
    return pad_or_trim(features[:, :content_frames], length), content_frames


def encoder_frames(content_frames: int, window_pad_s: float, max_frames: int = 3000) -> int:
    """Log-Mel frames the encoder reads for ``content_frames`` of speech (100 a second).

    Whisper pads every window to 30 s, and on a CPU the encoder pass over those 3000 frames
    is most of a turn's cost (attention grows with the square of the length). CTranslate2
    accepts a shorter window; the speech plus ``window_pad_s`` of silence, in whole
    seconds, keeps Whisper's accuracy on our telephone sets (benchmarks/voice.py,
    ``window``) at a fraction of the cost. 0: Whisper's full window.
    """
    if window_pad_s <= 0:
        return max_frames
    return min(max_frames, math.ceil(content_frames / 100 + window_pad_s) * 100)


def max_length(prompt_tokens: int, budget: int) -> int:
    """``generate``'s ``max_length`` that lets ``budget`` tokens be decoded after the prompt.

    CTranslate2 decodes at most ``min(L // 2, L - (prompt_tokens - 1))`` steps for a
    ``max_length`` L, so ``prompt_tokens + budget`` alone cuts a short prompt's transcript
    to half its budget. Whisper's decoder holds 448 positions in all.
    """
    wanted = max(prompt_tokens + budget, 2 * (budget + 1))
    return min(wanted, 448)


def _tokenizer(model, options: DecodeKwargs) -> Tokenizer:
    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task=options["task"],
                     language=options["language"])


def _prompt(model, tokenizer: Tokenizer, options: DecodeKwargs) -> list[int]:
    previous: list[int] = []
    if options["initial_prompt"] is not None:
        previous = tokenizer.encode(" " + options["initial_prompt"].strip())
    return model.get_prompt(tokenizer, previous, without_timestamps=True)


def _decode_group(model, group: list[_Item]) -> list[list[Segment] | None]:
    """One encoder pass and one beam search for utterances whose prompts have one length
    (and, like every utterance of one ``Transcriber``, the same decoding options)."""
    first = group[0].options
    tokenizer = _tokenizer(model, first)
    beam_size = first["beam_size"]
    prompt_tokens = len(group[0].prompt)
    encoder_output = model.encode(np.stack([item.features for item in group]))
    generated = model.model.generate(
        encoder_output,
        [item.prompt for item in group],
        beam_size=beam_size,
        patience=1,
        num_hypotheses=beam_size,  # every finished hypothesis: see _search_ended_early
        length_penalty=1,
        repetition_penalty=1,
        no_repeat_ngram_size=first["no_repeat_ngram_size"],
        max_length=max(max_length(prompt_tokens, item.options["max_new_tokens"])
                       for item in group),
        return_scores=True,
        return_no_speech_prob=True,
        suppress_blank=True,
        suppress_tokens=list(get_suppressed_tokens(tokenizer, list(_SUPPRESS_TOKENS))),
        max_initial_timestamp_index=round(_MAX_INITIAL_TIMESTAMP_S / model.time_precision),
    )
    return [_segments(model, tokenizer, item, result)
            for item, result in zip(group, generated, strict=True)]


def _search_ended_early(result, prompt_tokens: int, budget: int) -> bool:
    """Whether this utterance's search stopped before its own budget would have cut it.

    CTranslate2 decodes at most ``min(L // 2, L - start)`` steps for ``max_length`` L and a
    prompt whose last token starts decoding (``start`` = prompt length - 1); a hypothesis
    ending with <|endoftext|> at step s has s tokens, and beam search stops an utterance at
    the step its ``beam_size``-th hypothesis ends. Of the hypotheses that end on that step
    at least one is among the ``beam_size`` returned (fewer than ``beam_size`` ended
    before), so the longest returned one gives the step. The utterance's own search would
    have been forced to end at its last step, ``steps - 1``: if it stopped before, the
    smaller budget made no difference.
    """
    total = max_length(prompt_tokens, budget)
    steps = min(total // 2, total - (prompt_tokens - 1))
    return max(len(tokens) for tokens in result.sequences_ids) < steps - 1


def _segments(model, tokenizer: Tokenizer, item: _Item, result) -> list[Segment] | None:
    """The segments ``generate_segments`` yields for one window, or None when the single
    call would have decoded again (budget reached, or a temperature fallback)."""
    options = item.options
    if not _search_ended_early(result, len(item.prompt), options["max_new_tokens"]):
        return None
    tokens = result.sequences_ids[0]
    avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)  # length_penalty 1
    text = tokenizer.decode(tokens).strip()
    compression_ratio = get_compression_ratio(text)
    if len(options["temperature"]) > 1 and _needs_fallback(
            options, avg_logprob, compression_ratio, result.no_speech_prob):
        return None
    threshold = options["no_speech_threshold"]
    if threshold is not None and result.no_speech_prob > threshold:
        log_prob_threshold = options["log_prob_threshold"]
        if log_prob_threshold is None or avg_logprob <= log_prob_threshold:
            return []
    frame_s = model.feature_extractor.time_per_frame
    pieces, _seek, _single_ending = model._split_segments_by_timestamps(
        tokenizer=tokenizer, tokens=tokens, time_offset=0.0, segment_size=item.content_frames,
        segment_duration=item.content_frames * frame_s, seek=0)
    segments = []
    for piece in pieces:
        piece_text = tokenizer.decode(piece["tokens"])
        if piece["start"] == piece["end"] or not piece_text.strip():
            continue
        segments.append(Segment(
            id=len(segments) + 1, seek=0, start=piece["start"], end=piece["end"],
            text=piece_text, tokens=piece["tokens"], avg_logprob=avg_logprob,
            compression_ratio=compression_ratio, no_speech_prob=result.no_speech_prob,
            words=None, temperature=0.0))
    return segments


def _needs_fallback(options: DecodeKwargs, avg_logprob: float, compression_ratio: float,
                    no_speech_prob: float) -> bool:
    """``generate_with_fallback``'s test for trying the next temperature."""
    ratio_threshold = options["compression_ratio_threshold"]
    log_prob_threshold = options["log_prob_threshold"]
    no_speech_threshold = options["no_speech_threshold"]
    needs = ratio_threshold is not None and compression_ratio > ratio_threshold
    if log_prob_threshold is not None and avg_logprob < log_prob_threshold:
        needs = True
        if no_speech_threshold is not None and no_speech_prob > no_speech_threshold:
            needs = False  # silence
    return needs
