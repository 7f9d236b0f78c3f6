"""``voicebot keys init | fingerprint | rotate``: the deployment's ledger keys (ledger/keys.py).

Fingerprints name keys without revealing them: compare them between hosts to know that
every host writing to one ledger holds the same keys.
"""

from __future__ import annotations

import argparse

from bot.errors import VoicebotError
from bot.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser("keys", help="clés du registre : création, empreintes, renouvellement")
    actions = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("init", help="créer les clés absentes (jamais écrasées)")
    p.set_defaults(func=run_init)

    p = actions.add_parser("fingerprint", help="empreintes des clés, et celle du registre")
    p.add_argument("--db", metavar="URL", help="base du registre à comparer (défaut : "
                                               "VOICEBOT_DB_URL, sinon var/ledger.sqlite)")
    p.set_defaults(func=run_fingerprint)

    p = actions.add_parser("rotate", help="ajouter une clé de scellement (la clé de "
                                          "pseudonymisation ne se renouvelle pas)")
    p.add_argument("key", nargs="?", choices=("sealing", "transcript", "pseudonym"),
                   default="sealing", help="clé à renouveler (défaut : sealing)")
    p.add_argument("--pseudonym", action="store_true",
                   help="renouveler la clé de pseudonymisation (refusé : voir le message)")
    p.set_defaults(func=run_rotate)


def run_init(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.keys import init_keys, load_keys

    for line in init_keys(settings):
        print(line[0].upper() + line[1:])
    _print_fingerprints(load_keys(settings))
    return 0


def run_fingerprint(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from ledger import db, store
    from ledger.api import PSEUDONYM_KEY_ID, SEALING_KEY_IDS
    from ledger.keys import KeyMismatchError, load_keys, mismatch_message

    keys = load_keys(settings)
    _print_fingerprints(keys)
    url = args.db if args.db is None or "://" in args.db else f"sqlite:///{args.db}"
    url = db.resolve_url(settings.ledger, settings.paths.state_dir, url)
    engine = db.create_engine(url, settings.ledger)
    try:
        with engine.connect() as conn:
            stored = store.read_meta(conn, PSEUDONYM_KEY_ID)
            sealing = store.read_meta(conn, SEALING_KEY_IDS)
    except SQLAlchemyError:
        print(f"Registre ({db.redact(url)}) : injoignable ou vide, rien à comparer.")
        return 0
    finally:
        engine.dispose()
    fingerprint = keys.pseudonymizer.key_id
    if stored is None:
        print("Registre : aucune empreinte enregistrée (le premier processus qui écrit "
              "enregistre la sienne).")
        return 0
    print(f"Registre : pseudonymisation {stored}"
          + (f", scellement {sealing.replace(',', ', ')}" if sealing else ""))
    if stored != fingerprint:
        raise KeyMismatchError(mismatch_message(fingerprint, stored, settings))
    print("Les clés de ce processus sont celles du registre.")
    return 0


def run_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.keys import PSEUDONYM_ROTATION_REFUSED, rotate_sealing_key

    if args.pseudonym or args.key == "pseudonym":
        raise VoicebotError(PSEUDONYM_ROTATION_REFUSED)
    key_id = rotate_sealing_key(settings)
    print(f"Nouvelle clé de scellement {key_id} : elle scelle désormais transcriptions et "
          "enregistrements ; les anciennes restent dans le trousseau pour les relire. "
          "Copiez le fichier de clés sur chaque hôte du déploiement, puis redémarrez les "
          "services.")
    return 0


def _print_fingerprints(keys) -> None:  # noqa: ANN001 - ledger.keys.LedgerKeys, imported lazily
    print(f"Clé de pseudonymisation : empreinte {keys.pseudonymizer.key_id} "
          f"({keys.pseudonym_source})")
    ids = keys.cipher.key_ids
    for key_id in ids:
        role = "scelle" if key_id == ids[-1] else "ouvre seulement"
        print(f"Clé de scellement : {key_id} ({role} ; {keys.sealing_source})")
