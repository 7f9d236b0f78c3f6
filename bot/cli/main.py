"""``voicebot``: the one entry point. Each command group lives in its own module.

A module exposes ``register(subparsers)`` and sets ``func(args, settings) -> int`` on each
parser. Heavy imports (Rasa, Whisper) happen inside the commands, so ``voicebot kb check``
answers in a fraction of a second.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from bot import settings as settings_module
from bot.errors import VoicebotError

COMMAND_MODULES = (
    "bot.cli.kb",
    "bot.cli.conversation",
    "bot.cli.voice",
    "bot.cli.ledger",
    "bot.cli.keys",
    "bot.cli.serve",
    "bot.cli.balancer",
    "bot.cli.engine",
    "bot.cli.sip_worker",
    "bot.cli.console",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicebot",
        description="allo-caf : assistant vocal automatique du 3230 (Caf).",
    )
    parser.add_argument("--config", type=Path,
                        help="fichier de réglages YAML (défaut : voicebot.yml)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="journal plus détaillé")
    sub = parser.add_subparsers(dest="command", metavar="COMMANDE")
    sub.required = True
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = settings_module.load(args.config)
        return int(args.func(args, settings) or 0)
    except VoicebotError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
