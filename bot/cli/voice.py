"""Speech at the command line: ``voicebot transcribe`` (files → text) and ``voicebot say``.

``transcribe`` prints one JSON object per file, in order, as soon as it is done:
``{"file", "text", "asr_ms", "audio_ms"}``, or ``{"file", "error"}`` (a French message)
for a file that cannot be read; the run goes on with the other files and exits 2 if any
file failed, as every command does for a person's mistake. A file of any length is
transcribed whole (cut in its pauses, see ``asr.pauses``); any WAV ``bot.audio.read_wav``
reads is accepted (8 to 32-bit PCM, float, A-law, μ-law, stereo, any rate).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from bot.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    transcribe = sub.add_parser(
        "transcribe", help="transcrire des fichiers WAV (une ligne JSON par fichier)")
    transcribe.add_argument("files", nargs="+", type=Path, metavar="FICHIER",
                            help="fichier WAV (PCM, flottant, A-law ou μ-law ; mono ou stéréo ; "
                                 "toute fréquence ; toute durée)")
    transcribe.add_argument("--prompt", default=None,
                            help="phrase de contexte donnée au modèle (vocabulaire du domaine)")
    transcribe.set_defaults(func=run_transcribe)

    say = sub.add_parser("say", help="synthétiser un texte dans un fichier WAV")
    say.add_argument("text", metavar="TEXTE")
    say.add_argument("-o", "--output", type=Path, required=True, metavar="FICHIER.wav")
    say.add_argument("--rate", type=float, default=None,
                     help="débit de parole : 1.0 naturel, 0.9 = 10 %% plus lent "
                          "(défaut : tts.rate)")
    say.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                     help="fréquence du fichier (défaut : 8000, celle de la ligne)")
    say.set_defaults(func=run_say)

    talk = sub.add_parser(
        "talk", help="conversation de vive voix avec le micro et le haut-parleur (PyAudio)")
    talk.set_defaults(func=run_talk)


def run_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    from asr.transcriber import Transcriber
    from bot.audio import read_wav
    from bot.errors import VoicebotError

    transcriber = Transcriber.load(settings.asr, settings.paths.models_dir)
    failures = 0
    for path in args.files:
        try:
            audio = read_wav(path)
            t = transcriber.transcribe(audio, prompt=args.prompt)
            line = {"file": str(path), "text": t.text, "asr_ms": t.asr_ms,
                    "audio_ms": t.audio_ms}
        except VoicebotError as exc:
            failures += 1
            line = {"file": str(path), "error": str(exc)}
        print(json.dumps(line, ensure_ascii=False), flush=True)
    return 2 if failures else 0


def run_say(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    from bot.audio import LINE_RATE, AudioFrame, write_wav
    from tts.voice import TtsError, load_voice, synthesize_at

    options = settings.tts
    if args.rate is not None:
        options = dataclasses.replace(options, rate=args.rate)
    sample_rate = args.sample_rate or LINE_RATE
    if not 4000 <= sample_rate <= 48000:
        raise TtsError(f"--sample-rate {sample_rate} invalide : entre 4000 et 48000 Hz.")
    if not args.text.strip():
        raise TtsError("Le texte à dire est vide.")
    voice = load_voice(options)
    started = time.monotonic()
    first_audio_ms = None
    pcm = []
    for frame in synthesize_at(voice, args.text, sample_rate):
        if first_audio_ms is None:
            first_audio_ms = round((time.monotonic() - started) * 1000)
        pcm.append(frame.pcm)
    audio = AudioFrame(b"".join(pcm), sample_rate)
    try:
        write_wav(args.output, audio)
    except OSError as exc:
        raise TtsError(f"Impossible d'écrire {args.output} : {exc.strerror}.") from None
    print(json.dumps({"file": str(args.output), "voice": voice.voice_id,
                      "audio_ms": audio.duration_ms, "first_audio_ms": first_audio_ms,
                      "tts_ms": round((time.monotonic() - started) * 1000)},
                     ensure_ascii=False), file=sys.stderr)
    return 0


def run_talk(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    return asyncio.run(_talk(settings))


async def _talk(settings: Settings) -> int:
    """Open the sound card first: without one, say so before loading any model."""
    import asyncio
    import uuid

    from bot.pipeline import Conversation, VoiceServices
    from bot.soundcard import SoundCardLine

    line = SoundCardLine(asyncio.get_running_loop())
    line.open()
    try:
        print("Chargement des modèles…", file=sys.stderr)
        services = await VoiceServices.load(settings)
        print("Parlez après l'accueil. Touches : tapez 0 puis Entrée pour un conseiller, "
              "* pour répéter, q pour raccrocher.", file=sys.stderr)

        async def transfer() -> bool:
            print("[transfert vers un conseiller]", file=sys.stderr)
            return True

        def on_turn(turn) -> None:
            print(f"Vous : {turn.transcript}\nBot : {turn.reply.text}", file=sys.stderr)

        keys = asyncio.create_task(_read_keys(line))
        conversation = Conversation(services, line, f"talk-{uuid.uuid4().hex[:8]}", transfer,
                                    on_turn=on_turn)
        result = await conversation.run()
        keys.cancel()
        print(f"[fin de l'appel : {result.ending.value}]", file=sys.stderr)
        return 0
    finally:
        line.close()


async def _read_keys(line) -> None:
    import asyncio

    while True:
        text = await asyncio.to_thread(sys.stdin.readline)
        if not text or text.strip().lower() == "q":
            line.hang_up()
            return
        for key in text.strip():
            if key in "0123456789*#":
                line.dtmf.put_nowait(key)
