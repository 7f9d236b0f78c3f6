"""Talk to the bot in text: ``voicebot chat`` (a terminal conversation) and ``voicebot ask``
(scripts)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid

from bot.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser("chat", help="conversation écrite avec le bot dans le terminal")
    chat.set_defaults(func=run_chat)

    ask = sub.add_parser(
        "ask", help="une question par ligne sur l'entrée standard, une réponse JSON par ligne")
    ask.add_argument("--audio", action="store_true",
                     help="chaque ligne est le chemin d'un fichier WAV (toute fréquence, "
                          "mono ou stéréo) ; code de sortie 2 si un fichier est illisible")
    ask.set_defaults(func=run_ask)


def run_chat(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_chat(settings))


async def _chat(settings: Settings) -> int:
    from bot.dialogue import Dialogue, DialogueError

    print("Chargement du modèle…", file=sys.stderr)
    dialogue = await Dialogue.load(settings)
    conversation = f"chat-{uuid.uuid4().hex[:8]}"
    print(f"Bot : {dialogue.message('greeting')}")
    print("(Tapez votre question ; Ctrl-D pour quitter.)", file=sys.stderr)
    while True:
        try:
            text = await asyncio.to_thread(input, "Vous : ")
        except EOFError:
            print()
            return 0
        if not text.strip():
            continue
        try:
            reply = await dialogue.respond(conversation, text)
        except DialogueError:
            print(f"Bot : {dialogue.message('error_apology')}")
            print("[transfert vers un conseiller]")
            return 1
        print(f"Bot : {reply.text}")
        if reply.handoff:
            print("[transfert vers un conseiller]")
        if reply.end_call:
            return 0


def run_ask(args: argparse.Namespace, settings: Settings) -> int:
    if args.audio:
        from bot.voice_ask import ask_audio

        return asyncio.run(ask_audio(settings, sys.stdin, sys.stdout))
    return asyncio.run(_ask_text(settings))


async def _ask_text(settings: Settings) -> int:
    from bot.dialogue import Dialogue, DialogueError

    dialogue = await Dialogue.load(settings)
    failures = 0
    for number, line in enumerate(sys.stdin, start=1):
        text = line.strip()
        if not text:
            continue
        conversation = f"ask-{number}"
        try:
            reply = await dialogue.respond(conversation, text)
            result = reply.as_json(text)
        except DialogueError as exc:
            failures += 1
            result = {"input": text, "motif": "conseiller", "action": "handoff", "confidence": 0.0,
                      "reply": dialogue.message("error_apology"), "error": str(exc)}
        finally:
            await dialogue.forget(conversation)
        print(json.dumps(result, ensure_ascii=False), flush=True)
    return 1 if failures else 0
