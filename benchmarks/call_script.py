"""What the benchmark's callers say, and what the bot should say back.

- ``publish``: ``voicebot kb publish`` into a temporary state directory (the trained model
  is reused from ``var/models`` by fingerprint), the node's state for the run.
- ``references``: the bot's pre-rendered audio (the greeting, the saturation message…),
  to recognise what a phone heard, and each message's length.
- ``choose_questions``: what ``voicebot ask --audio`` makes of each candidate recording at
  8 kHz, offline and alone; those answered without a hand-off become the questions, and
  this offline reading is what the live one is compared with.
- ``script``: one caller's WAV (baresip plays it and hangs up when it ends).

**The questions are not callers.** They are voice prompts of the Asterisk telephone
exchange (``tests/data/asr/fr``: "Ce code d'accès est invalide pour cette conférence"…),
read in a studio by one professional voice (Canadian French), clean and evenly paced:
real recorded French speech on a telephone band, but neither Caf questions nor real
callers' speech (hesitations, noise, accents, mobile codecs). ``DATA_NOTE`` says so in
every JSON the benchmark prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from phone_timing import FRAME_MS, speech_bounds  # noqa: E402

from bot.audio import AudioFrame, read_wav, resample, write_wav  # noqa: E402

VOICEBOT = ROOT / ".venv" / "bin" / "voicebot"
ASR_DATA = ROOT / "tests" / "data" / "asr" / "fr"
CANDIDATES = ("conf-invalidpin.wav", "ss-noservice.wav", "agent-alreadyon.wav",
              "pbx-parkingfailed.wav", "vm-starmain.wav", "conf-roll-callcomplete.wav",
              "vm-tocancelmsg.wav", "dictate_record_help.wav", "privacy-incorrect.wav",
              "vm-savefolder.wav")
"""Candidate recordings; those the live knowledge base answers (``answer`` or ``reorient``,
no hand-off) become the callers' questions."""
DATA_NOTE = ("The callers' questions are IVR prompts read by a studio voice (tests/data/asr/fr: "
             "the French sound prompts of the Asterisk telephone exchange, one professional "
             "Canadian French voice), not real callers and not Caf questions; 'understood' "
             "below is what the bot made of them, compared with voicebot ask --audio offline.")
LINE_RATE = 8000
AFTER_GREETING_S = 1.5
"""Silence the caller leaves after the greeting before speaking (it is not interruptible)."""
AFTER_ANSWER_S = 2.5
"""Silence after an answer's expected end before the next question, so that a slow answer
is still heard whole instead of being barged in on."""
HANGUP_AFTER_S = 3.0


def state_env(state_dir: Path) -> dict[str, str]:
    return dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(state_dir),
                VOICEBOT_PATHS_GENERATED_DIR=str(state_dir / "generated"))


def publish(state_dir: Path) -> float:
    """``voicebot kb publish`` into ``state_dir``, the trained model shared through var/models."""
    state_dir.mkdir(parents=True, exist_ok=True)
    models = state_dir / "models"
    cache = ROOT / "var" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    if not models.exists():
        models.symlink_to(cache, target_is_directory=True)
    started = time.monotonic()
    done = subprocess.run([str(VOICEBOT), "kb", "publish"], env=state_env(state_dir),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"kb publish failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return time.monotonic() - started


def references(state_dir: Path) -> tuple[dict[str, AudioFrame], dict[str, int]]:
    """The pre-rendered audio of the system messages by key, and every cached text's
    length in ms (the answers' lengths set the callers' pauses)."""
    from bot import settings as settings_module
    from bot.kb.store import KbStore
    from tts.speaker import Speaker, spoken_texts

    settings = settings_module.load(env=state_env(state_dir))
    kb = KbStore(settings.paths.state_dir).current().kb
    speaker = Speaker.load(settings)
    durations = {}
    for text in spoken_texts(kb):
        audio = speaker.cached(text)
        if audio is not None:
            durations[text] = audio.duration_ms
    messages = {key: speaker.cached(text) for key, text in kb.messages.items()}
    return {k: v for k, v in messages.items() if v is not None}, durations


def reply_ms(reply: str, durations: dict[str, int]) -> int:
    """How long a reply plays: the cached parts it is made of (15 characters a second for
    anything not found, a generous estimate for espeak at the configured rate)."""
    total, rest = 0, reply
    for text in sorted(durations, key=len, reverse=True):
        if text and text in rest:
            total += durations[text]
            rest = rest.replace(text, " ", 1)
    leftover = len(rest.strip(" .")) if rest.strip(" .") else 0
    return total + int(leftover / 15 * 1000)


def choose_questions(workdir: Path, state_dir: Path, durations: dict[str, int],
                     names: tuple[str, ...], log) -> list[dict]:
    """What the bot makes of each candidate at 8 kHz, alone (``voicebot ask --audio``)."""
    paths = []
    for name in names:
        audio = resample(read_wav(ASR_DATA / name), LINE_RATE)
        path = workdir / "questions" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, audio)
        paths.append(path)
    done = subprocess.run([str(VOICEBOT), "ask", "--audio"], env=state_env(state_dir),
                          input="\n".join(map(str, paths)) + "\n", capture_output=True,
                          text=True)
    if done.returncode != 0:
        raise RuntimeError(f"voicebot ask --audio failed:\n{done.stderr[-3000:]}")
    chosen = []
    for path, line in zip(paths, done.stdout.splitlines(), strict=True):
        result = json.loads(line)
        ok = result.get("action") in ("answer", "reorient") and result.get("confidence", 0) >= 0.5
        log(f"question {path.name}: « {result.get('transcript')} » → {result.get('action')} "
            f"{result.get('motif')} ({result.get('confidence', 0):.2f})"
            f"{'' if ok else ' — not used'}")
        audio = read_wav(path)
        bounds = speech_bounds(audio)
        if ok and bounds:
            chosen.append({"file": path.name, "audio": audio,
                           "speech_end": (bounds[1] + 1) * LINE_RATE * FRAME_MS // 1000,
                           "offline": {"transcript": result.get("transcript"),
                                       "action": result["action"], "motif": result["motif"],
                                       "confidence": result.get("confidence")},
                           "answer_ms": reply_ms(result.get("reply") or "", durations)})
    if len(chosen) < 2:
        raise RuntimeError("fewer than two candidate questions are answered by this knowledge "
                           "base; pass others with --questions")
    return chosen


def _silence(seconds: float) -> bytes:
    return b"\0" * (int(seconds * LINE_RATE) * 2)


def script(path: Path, greeting_ms: int, questions: list[dict], lead_jitter_s: float,
           min_duration_s: float = 0.0) -> dict:
    """The caller's WAV: silence through the greeting, then question / silence for the
    answer, …, then the hang-up (at least ``min_duration_s`` after the start)."""
    pcm = _silence(greeting_ms / 1000 + AFTER_GREETING_S + lead_jitter_s)
    asked = []
    for i, question in enumerate(questions):
        start = len(pcm) // 2
        asked.append({"file": question["file"], "start": start,
                      "speech_end": start + question["speech_end"],
                      "samples": len(question["audio"].pcm) // 2})
        pcm += question["audio"].pcm
        pcm += _silence(question["answer_ms"] / 1000
                        + (AFTER_ANSWER_S if i + 1 < len(questions) else HANGUP_AFTER_S))
    pcm += _silence(max(0.0, min_duration_s - len(pcm) / 2 / LINE_RATE))
    frame = AudioFrame(pcm, LINE_RATE)
    write_wav(path, frame)
    return {"wav": path, "duration_s": frame.duration_ms / 1000, "questions": asked}


def silent_script(path: Path, seconds: float) -> Path:
    """A caller (or advisor) who says nothing and hangs up after ``seconds``."""
    write_wav(path, AudioFrame(_silence(seconds), LINE_RATE))
    return path
