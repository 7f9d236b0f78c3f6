"""Editors' commands: ``voicebot kb check``, ``voicebot kb publish`` and ``voicebot train``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    kb = sub.add_parser("kb", help="base de connaissances : vérifier, publier")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="ACTION")
    kb_sub.required = True

    check = kb_sub.add_parser("check",
                              help="vérifier toute la base (fichier, ligne, quoi corriger)")
    check.add_argument("directory", nargs="?", type=Path,
                       help="dossier de la base (défaut : knowledge/)")
    check.add_argument("--json", action="store_true", help="résultat en JSON")
    check.set_defaults(func=run_check)

    publish = kb_sub.add_parser(
        "publish", help="vérifier, réentraîner si les questions ont changé, mettre en ligne")
    publish.add_argument("--force", action="store_true", help="réentraîner même sans changement")
    publish.set_defaults(func=run_publish)

    train = sub.add_parser("train",
                           help="entraîner le modèle (rien à faire si la base n'a pas changé)")
    train.add_argument("--force", action="store_true", help="réentraîner même sans changement")
    train.set_defaults(func=run_train)


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    """Exit 0 for a valid base; 2 with one French line per error on stderr; with ``--json``,
    1 and the report on stdout (``"ok": false``)."""
    from bot.kb.check import check_kb

    result = check_kb(args.directory or settings.paths.knowledge_dir)
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
        return 0 if result.ok else 1
    for error in result.errors:
        print(error, file=sys.stderr)
    if result.ok:
        print(f"Base valide : {result.entries} fiches, {len(result.motifs)} motifs.")
        return 0
    print(f"{len(result.errors)} erreur(s) : rien ne sera publié tant qu'elles ne sont pas "
          "corrigées.", file=sys.stderr)
    return 2  # a person's mistake, as for every command; --json keeps 1 with "ok": false


def run_publish(args: argparse.Namespace, settings: Settings) -> int:
    from bot.kb.publish import publish
    from tts.speaker import prerender

    result = publish(settings, force_training=args.force,
                     render_audio=lambda kb: prerender(settings, kb))
    print(result.summary())
    return 0


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    from bot.errors import KbInvalidError
    from bot.kb.check import check_kb
    from bot.training import train_model

    checked = check_kb(settings.paths.knowledge_dir)
    if checked.kb is None:
        raise KbInvalidError(checked.errors)
    result = train_model(settings, checked.kb, force=args.force)
    print(result.summary())
    return 0
