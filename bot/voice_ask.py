"""``voicebot ask --audio``: WAV paths on stdin, one JSON reply per line on stdout.

Each file is one caller utterance, taken through the same stages as a call (Whisper with
the knowledge base's prompt, the dialogue core, the reply's first audio from the speaker),
in a conversation of its own. The JSON object is ``voicebot ask``'s, plus ``transcript``,
``asr_ms``, ``nlu_ms``, ``tts_ms``, ``response_ms`` (end of the file's audio → first reply
audio ready: ASR + dialogue + TTS, the end-of-turn wait of a live call excluded, see
benchmarks/voice.py for that) and ``reply_audio_ms``. A file that cannot be read gets
``{"input", "error"}`` (a French message) on its line and the run goes on; the exit code
is then 2. Files are read as ``voicebot transcribe`` reads them (any WAV, any length).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TextIO

from bot.audio import read_wav
from bot.dialogue import DialogueError
from bot.errors import VoicebotError
from bot.pipeline import VoiceServices
from bot.settings import Settings


async def ask_audio(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    services = await VoiceServices.load(settings)
    failures = 0
    for number, line in enumerate(stdin, start=1):
        name = line.strip()
        if not name:
            continue
        try:
            result = await answer_file(services, Path(name), f"ask-audio-{number}")
        except (VoicebotError, DialogueError, OSError) as exc:
            failures += 1
            result = {"input": name, "error": str(exc)}
        print(json.dumps(result, ensure_ascii=False), file=stdout, flush=True)
    return 2 if failures else 0


async def answer_file(services: VoiceServices, path: Path, conversation_id: str) -> dict:
    audio = read_wav(path)
    started = time.perf_counter()
    transcript = await services.transcribe(audio)
    try:
        reply = await services.dialogue.respond(conversation_id, transcript.text)
    finally:
        await services.dialogue.forget(conversation_id)
    tts_started = time.perf_counter()
    reply_audio_ms = 0
    tts_ms = None
    for part in reply.parts:
        async for frame in services.speaker.frames(part):
            if tts_ms is None:
                tts_ms = _ms_since(tts_started)
                response_ms = _ms_since(started)
            reply_audio_ms += frame.duration_ms
    result = reply.as_json(str(path))
    result.update(transcript=transcript.text, asr_ms=transcript.asr_ms, nlu_ms=reply.nlu_ms,
                  tts_ms=tts_ms or 0, response_ms=response_ms, reply_audio_ms=reply_audio_ms)
    return result


def _ms_since(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
