"""Console commands: ``voicebot console`` (the HTTPS server), ``voicebot users …`` and
``voicebot audit …`` (the access log)."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import VoicebotError
from bot.settings import Settings

if TYPE_CHECKING:
    from ledger.api import Ledger


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("console", help="console web HTTPS (éditeurs, supervision, "
                                       "facturation, audit)")
    p.add_argument("--host", default=None, help="adresse d'écoute (défaut : console.host, "
                                                "127.0.0.1)")
    p.add_argument("--port", type=int, default=None,
                   help="port HTTPS (défaut : console.port, 8443)")
    p.add_argument("--certificate-only", action="store_true",
                   help="créer le certificat auto-signé s'il manque, puis s'arrêter "
                        "(utilisé par scripts/setup.sh)")
    p.set_defaults(func=run_console)

    users = sub.add_parser("users", help="utilisateurs de la console")
    actions = users.add_subparsers(dest="users_command", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("add", help="créer un utilisateur")
    p.add_argument("name", metavar="NOM")
    p.add_argument("--role", required=True, metavar="ROLE",
                   help="editeur, superviseur, facturation, auditeur ou admin")
    p.add_argument("--password-stdin", action="store_true", required=True,
                   help="lire le mot de passe sur l'entrée standard")
    p.set_defaults(func=run_users_add)
    p = actions.add_parser("list", help="lister les utilisateurs")
    p.set_defaults(func=run_users_list)
    p = actions.add_parser("disable", help="désactiver un utilisateur (ferme ses sessions)")
    p.add_argument("name", metavar="NOM")
    p.set_defaults(func=run_users_disable)
    p = actions.add_parser("reset", help="nouveau mot de passe (réactive et débloque)")
    p.add_argument("name", metavar="NOM")
    p.add_argument("--password-stdin", action="store_true", required=True,
                   help="lire le mot de passe sur l'entrée standard")
    p.set_defaults(func=run_users_reset)

    audit = sub.add_parser("audit", help="journal des accès : vérification, export")
    actions = audit.add_subparsers(dest="audit_command", metavar="ACTION")
    actions.required = True
    p = actions.add_parser("verify", help="vérifier la chaîne d'empreintes et les ancres")
    p.set_defaults(func=run_audit_verify)
    p = actions.add_parser("export", help="exporter le journal en CSV")
    p.add_argument("--from", dest="start", required=True, metavar="AAAA-MM-JJ")
    p.add_argument("--to", dest="end", required=True, metavar="AAAA-MM-JJ")
    p.add_argument("-o", "--output", type=Path, metavar="FICHIER",
                   help="fichier de sortie (défaut : la sortie standard)")
    p.set_defaults(func=run_audit_export)
    p = actions.add_parser("anchor", help="écrire maintenant l'ancre du jour et purger les "
                                          "entrées échues (fait chaque jour par le service)")
    p.set_defaults(func=run_audit_anchor)


# --- console ---------------------------------------------------------------------------------
def run_console(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio
    import logging

    import uvicorn

    from console.app import create_app
    from console.tls import ensure_certificate, harden

    host = args.host or settings.console.host
    port = args.port or settings.console.port
    cert, key, created = ensure_certificate(settings)
    if created:
        print(f"Certificat auto-signé créé : {cert}", file=sys.stderr)
    if args.certificate_only:
        if not created:
            print(f"Certificat de la console : {cert}", file=sys.stderr)
        return 0
    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app(settings, maintenance=True)
    config = uvicorn.Config(app, host=host, port=port, ssl_certfile=str(cert),
                            ssl_keyfile=str(key), proxy_headers=False, server_header=False,
                            log_level="warning", lifespan="on", ws="none")
    # ws="none": no websocket pages; and Rasa pins an older websockets than uvicorn expects.
    config.load()
    harden(config.ssl)
    server = uvicorn.Server(config)
    try:
        sock = config.bind_socket()
    except SystemExit:  # uvicorn exits on a bind error after logging it in English
        raise VoicebotError(f"La console ne peut pas écouter sur {host}:{port} (adresse "
                            "occupée ou non autorisée) : voir console.host / console.port "
                            "ou --host / --port.") from None
    sock.listen(config.backlog)  # connections wait in the backlog until the server accepts
    shown = f"[{host}]" if ":" in host else host
    # Listening from here on: a client may connect as soon as this line is printed.
    print(f"Console : https://{shown}:{port}/ (TLS 1.2 minimum) — Ctrl-C pour arrêter.",
          file=sys.stderr, flush=True)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


# --- users -----------------------------------------------------------------------------------
def _open(settings: Settings) -> Ledger:
    from ledger.api import Ledger

    return Ledger.open(settings, require_database=True, replay_spool=False)


def _read_password() -> str:
    text = sys.stdin.readline()
    password = text.rstrip("\r\n")
    if not password:
        raise VoicebotError("Mot de passe vide : donnez-le sur l'entrée standard "
                            "(par exemple : printf '%s\\n' \"$MDP\" | voicebot users add …).")
    return password


def _record(ledger: Ledger, settings: Settings, action: str, obj: str,
            outcome: str = "ok") -> None:
    from console.audit_log import AuditLog, cli_actor

    AuditLog.from_settings(settings, ledger.engine).append(cli_actor(), "systeme", action, obj,
                                                           "local", outcome)


def run_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from console.users import UserStore

    password = _read_password()
    ledger = _open(settings)
    try:
        try:
            user = UserStore(ledger.engine, settings.console).add(args.name, args.role, password)
        except VoicebotError:
            _record(ledger, settings, "utilisateur_ajout", f"{args.name} ({args.role})",
                    "refuse")
            raise
        _record(ledger, settings, "utilisateur_ajout", f"{user.name} ({user.role})")
    finally:
        ledger.close()
    print(f"Utilisateur « {user.name} » créé, rôle {user.role}.")
    return 0


def run_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from console.render import _datetime_ms
    from console.users import UserStore

    ledger = _open(settings)
    try:
        users = UserStore(ledger.engine, settings.console).list()
    finally:
        ledger.close()
    if not users:
        print("Aucun utilisateur. Créez le premier administrateur : "
              "voicebot users add NOM --role admin --password-stdin")
        return 0
    width = max(len(u.name) for u in users)
    print(f"{'NOM':<{width}}  {'RÔLE':<11}  {'ÉTAT':<10}  DERNIÈRE CONNEXION")
    for u in users:
        state = "actif" if u.active else "désactivé"
        print(f"{u.name:<{width}}  {u.role:<11}  {state:<10}  {_datetime_ms(u.last_login_at_ms)}")
    return 0


def run_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    from console.users import UserStore

    ledger = _open(settings)
    try:
        UserStore(ledger.engine, settings.console).disable(args.name)
        _record(ledger, settings, "utilisateur_desactivation", args.name)
    finally:
        ledger.close()
    print(f"Utilisateur « {args.name} » désactivé ; ses sessions sont fermées.")
    return 0


def run_users_reset(args: argparse.Namespace, settings: Settings) -> int:
    from console.users import UserStore

    password = _read_password()
    ledger = _open(settings)
    try:
        try:
            UserStore(ledger.engine, settings.console).reset(args.name, password)
        except VoicebotError:
            _record(ledger, settings, "utilisateur_mot_de_passe", args.name, "refuse")
            raise
        _record(ledger, settings, "utilisateur_mot_de_passe", args.name)
    finally:
        ledger.close()
    print(f"Nouveau mot de passe enregistré pour « {args.name} » (compte actif et débloqué).")
    return 0


# --- audit -----------------------------------------------------------------------------------
def run_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    from console.audit_log import AuditLog

    ledger = _open(settings)
    try:
        verdict = AuditLog.from_settings(settings, ledger.engine).verify()
    finally:
        ledger.close()
    if verdict.ok:
        span = (f", n° {verdict.first_seq} à {verdict.last_seq}" if verdict.entries else "")
        print(f"Journal des accès intact : {verdict.entries} entrée(s){span}, ancres comprises.")
        return 0
    print(f"Journal des accès altéré : {verdict.problems[0]}", file=sys.stderr)
    for problem in verdict.problems[1:]:
        print(f"  aussi : {problem}", file=sys.stderr)
    return 1


def _parse_day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise VoicebotError(f"{option} : date attendue au format AAAA-MM-JJ "
                            f"(reçu « {text} »).") from None


def run_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    from console.audit_log import AuditLog

    start, end = _parse_day(args.start, "--from"), _parse_day(args.end, "--to")
    if end < start:
        raise VoicebotError(f"--to ({end}) est avant --from ({start}).")
    ledger = _open(settings)
    try:
        audit = AuditLog.from_settings(settings, ledger.engine)
        if args.output:
            with args.output.open("w", encoding="utf-8", newline="") as out:
                count = audit.export_csv(out, start, end)
        else:
            count = audit.export_csv(sys.stdout, start, end)
        _record(ledger, settings, "export_journal", f"du {start} au {end} : {count} entrée(s)")
    finally:
        ledger.close()
    if args.output:
        print(f"{count} entrée(s) écrites dans {args.output}.", file=sys.stderr)
    return 0


def run_audit_anchor(args: argparse.Namespace, settings: Settings) -> int:
    from console.audit_log import AuditLog

    ledger = _open(settings)
    try:
        audit = AuditLog.from_settings(settings, ledger.engine)
        purged = audit.purge()
        anchor = audit.anchor(force=True)
    finally:
        ledger.close()
    if purged:
        print(f"{purged} entrée(s) de plus de {audit.retention_months} mois purgée(s).")
    if anchor:
        print(f"Ancre écrite : entrée n° {anchor.seq}, {anchor.hash} ({audit.anchor_file}).")
    else:
        print("Rien de nouveau à ancrer.")
    return 0
