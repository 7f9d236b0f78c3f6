"""Ledger and billing commands: ``voicebot ledger …``, ``voicebot report …``, ``voicebot orders …``.

``--db`` takes a SQLAlchemy URL or a path to a SQLite file; without it, the configured
database (``VOICEBOT_DB_URL``, else ``ledger.sqlite`` in the state directory). The spool
of calls that could not be written is replayed only into the configured database.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bot.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ledger.api import Ledger


def register(sub: argparse._SubParsersAction) -> None:
    _register_ledger(sub)
    _register_report(sub)
    _register_orders(sub)


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", metavar="URL",
                        help="base du registre : URL SQLAlchemy ou fichier SQLite "
                             "(défaut : VOICEBOT_DB_URL, sinon var/ledger.sqlite)")


def _output_option(parser: argparse.ArgumentParser, required: bool = False) -> None:
    default = "" if required else " (défaut : la sortie standard)"
    parser.add_argument("-o", "--output", type=Path, required=required, metavar="FICHIER",
                        help=f"fichier de sortie{default}")


def _register_ledger(sub: argparse._SubParsersAction) -> None:
    ledger = sub.add_parser("ledger", help="registre des appels : import, export, purge")
    actions = ledger.add_subparsers(dest="ledger_command", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("import", help="importer un CSV (tout ou rien, rejouable)")
    p.add_argument("file", type=Path, metavar="FICHIER.csv")
    _db_option(p)
    p.set_defaults(func=run_import)

    p = actions.add_parser("export", help="exporter le registre en CSV (réversibilité)")
    p.add_argument("--month", metavar="AAAA-MM", help="un seul mois (défaut : tout)")
    _db_option(p)
    _output_option(p)
    p.set_defaults(func=run_export)

    p = actions.add_parser("purge", help="supprimer transcriptions et enregistrements échus")
    p.add_argument("--dry-run", action="store_true", help="compter sans rien supprimer")
    _db_option(p)
    p.set_defaults(func=run_purge)

    p = actions.add_parser("replay-spool", help="rejouer les appels mis en attente")
    _db_option(p)
    p.set_defaults(func=run_replay)

    p = actions.add_parser("migrate", help="mettre le schéma de la base à jour")
    _db_option(p)
    p.set_defaults(func=run_migrate)

    p = actions.add_parser("transcript", help="lire la transcription d'un appel (journalisé)")
    p.add_argument("call_id", metavar="CALL_ID")
    _db_option(p)
    p.set_defaults(func=run_transcript)


def _register_report(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="rapports : extraction SC3.2, motifs, graphique")
    kinds = report.add_subparsers(dest="report_command", metavar="RAPPORT")
    kinds.required = True

    p = kinds.add_parser("sc32", help="extraction mensuelle SC3.2 (un jour par ligne)")
    p.add_argument("--month", required=True, metavar="AAAA-MM")
    p.add_argument("--format", choices=("csv", "xml", "json"), default="csv")
    p.add_argument("--detail", action="store_true",
                   help="une ligne par interaction avec son verdict (CSV), pour l'audit")
    p.add_argument("--close", action="store_true",
                   help="clore le mois : l'extraction CSV est enregistrée avec son empreinte "
                        "SHA-256, et plus rien ne peut en changer les chiffres")
    _db_option(p)
    _output_option(p)
    p.set_defaults(func=run_sc32)

    for granularity, label in (("daily", "par jour"), ("weekly", "par semaine ISO"),
                               ("monthly", "du mois")):
        p = kinds.add_parser(granularity, help=f"interactions par motif, {label}, avec commandes")
        p.add_argument("--month", required=True, metavar="AAAA-MM")
        p.add_argument("--format", choices=("csv", "xml"), default="csv")
        _db_option(p)
        _output_option(p)
        p.set_defaults(func=run_motif_report, granularity=granularity)

    p = kinds.add_parser("plot", help="graphique PNG : heures productives et commandées")
    p.add_argument("--month", required=True, metavar="AAAA-MM")
    _db_option(p)
    _output_option(p, required=True)
    p.set_defaults(func=run_plot)


def _register_orders(sub: argparse._SubParsersAction) -> None:
    orders = sub.add_parser("orders", help="commandes d'heures productives par jour")
    actions = orders.add_subparsers(dest="orders_command", metavar="ACTION")
    actions.required = True

    p = actions.add_parser("set", help="enregistrer la commande d'un jour")
    p.add_argument("--date", required=True, metavar="AAAA-MM-JJ")
    p.add_argument("--hours", required=True, metavar="H")
    p.add_argument("--firm", action="store_true",
                   help="commande ferme (J-10) ; sans : indicative (J-40)")
    _db_option(p)
    p.set_defaults(func=run_orders_set)

    p = actions.add_parser("list", help="commandes d'un mois (CSV)")
    p.add_argument("--month", required=True, metavar="AAAA-MM")
    p.add_argument("--history", action="store_true", help="toutes les versions successives")
    _db_option(p)
    p.set_defaults(func=run_orders_list)


# --- helpers ---------------------------------------------------------------------------------
def _db_url(value: str | None) -> str | None:
    if value is None or "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


@contextmanager
def _ledger(args: argparse.Namespace, settings: Settings) -> Iterator[Ledger]:
    from ledger.api import Ledger

    ledger = Ledger.open(settings, _db_url(args.db), require_database=True,
                         replay_spool=args.db is None)
    try:
        yield ledger
    finally:
        ledger.close()


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
    else:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        print(f"Écrit : {output}", file=sys.stderr)


# --- ledger ----------------------------------------------------------------------------------
def run_import(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.csv_io import import_csv

    with _ledger(args, settings) as ledger:
        result = import_csv(ledger, args.file)
    print(result.summary())
    return 0


def run_export(args: argparse.Namespace, settings: Settings) -> int:
    from ledger import store
    from ledger.csv_io import write_csv
    from ledger.months import Month

    month = Month.parse(args.month) if args.month else None
    with _ledger(args, settings) as ledger:
        start, end = month.bounds_ms(ledger.calendar) if month else (None, None)
        with ledger.engine.connect() as conn:
            rows = store.rows_between(conn, start, end)
            if args.output is None:
                write_csv(rows, sys.stdout, ledger.calendar.tz)
            else:
                args.output.parent.mkdir(parents=True, exist_ok=True)
                with args.output.open("w", encoding="utf-8", newline="") as out:
                    count = write_csv(rows, out, ledger.calendar.tz)
                print(f"{count} ligne(s) exportée(s) : {args.output}", file=sys.stderr)
    return 0


def run_purge(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.retention import purge

    with _ledger(args, settings) as ledger:
        today = datetime.now(ledger.calendar.tz).date()
        directory = settings.ledger.recordings_dir or settings.paths.state_dir / "recordings"
        result = purge(ledger, today, directory, dry_run=args.dry_run)
    print(result.summary())
    return 0


def run_replay(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.api import Ledger

    ledger = Ledger.open(settings, _db_url(args.db), require_database=True, replay_spool=False)
    try:
        result = ledger.replay_spool()
    finally:
        ledger.close()
    if result.busy:
        print("Un autre processus rejoue déjà la file d'attente ; rien fait.")
        return 1
    print(f"{result.events} événement(s) en attente : {result.inserted} ajouté(s), "
          f"{result.duplicates} déjà présent(s), {result.conflicts} en conflit.")
    if result.closed_month:
        from ledger.closing import CLOSED_MONTH

        print(f"{result.closed_month} événement(s) mis de côté dans "
              f"{ledger.spool.directory / CLOSED_MONTH} : ils changeraient un mois clos.",
              file=sys.stderr)
        for report in result.reports:
            print(report, file=sys.stderr)
        return 1
    if ledger.spool.has_pending():
        print("Des événements restent en attente : la base est-elle joignable ?", file=sys.stderr)
        return 1
    return 1 if result.conflicts else 0


def run_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from ledger import db

    with _ledger(args, settings) as ledger:
        revision = db.current_revision(ledger.engine)
    print(f"Schéma à jour (révision {revision}).")
    return 0


def run_transcript(args: argparse.Namespace, settings: Settings) -> int:
    with _ledger(args, settings) as ledger:
        text = ledger.read_transcript(args.call_id, reader=getpass.getuser())
    if text is None:
        print(f"Aucune transcription pour l'appel {args.call_id} "
              "(jamais enregistrée, ou purgée après le délai de conservation).", file=sys.stderr)
        return 1
    print(text)
    return 0


# --- reports ---------------------------------------------------------------------------------
def run_sc32(args: argparse.Namespace, settings: Settings) -> int:
    import csv
    import io

    from ledger.months import Month
    from ledger.reports import judge_month, render_detail, render_sc32

    month = Month.parse(args.month)
    with _ledger(args, settings) as ledger:
        if args.close:
            _close(ledger, month)
        judged = judge_month(ledger, month)
        _warn_if_closed_differs(ledger, month, render_sc32(judged, "csv"))
        if args.detail:
            buffer = io.StringIO()
            csv.writer(buffer, lineterminator="\n").writerows(
                render_detail(judged, ledger.calendar.tz))
            text = buffer.getvalue()
        else:
            text = render_sc32(judged, args.format)
    _emit(text, args.output)
    return 0


def _close(ledger: Ledger, month) -> None:  # noqa: ANN001 - ledger.months.Month
    from ledger.closing import close_month
    from ledger.csv_io import format_instant

    closed, new = close_month(ledger, month, getpass.getuser(),
                              datetime.now(ledger.calendar.tz).date())
    if new:
        print(f"Mois {month} clos : extraction CSV enregistrée, SHA-256 {closed.sha256}.",
              file=sys.stderr)
    else:
        when = format_instant(closed.closed_at_ms, ledger.calendar.tz)[:16].replace("T", " ")
        print(f"Mois {month} déjà clos le {when} par {closed.closed_by} : extraction "
              f"enregistrée inchangée, SHA-256 {closed.sha256}.", file=sys.stderr)


def _warn_if_closed_differs(ledger: Ledger, month, text: str) -> None:  # noqa: ANN001
    """A closed month whose recomputed extraction differs: say it (a rule setting changed)."""
    from ledger.closing import read_closed

    with ledger.engine.connect() as conn:
        closed = read_closed(conn).get(str(month))
    if closed is not None and closed.extraction != text:
        print(f"Attention : le mois {month} est clos et son extraction facturée (SHA-256 "
              f"{closed.sha256}) diffère de celle-ci (réglage ledger.rule3_any_later_call "
              "changé ?).", file=sys.stderr)


def run_motif_report(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.months import Month
    from ledger.reports import judge_month, render_motif_report

    month = Month.parse(args.month)
    with _ledger(args, settings) as ledger:
        judged = judge_month(ledger, month)
    _emit(render_motif_report(judged, args.granularity, args.format), args.output)
    return 0


def run_plot(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.months import Month
    from ledger.plot import plot_month
    from ledger.reports import daily_series, judge_month

    month = Month.parse(args.month)
    with _ledger(args, settings) as ledger:
        judged = judge_month(ledger, month)
    plot_month(month, daily_series(judged), args.output)
    print(f"Écrit : {args.output}", file=sys.stderr)
    return 0


# --- orders ----------------------------------------------------------------------------------
def run_orders_set(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.months import parse_day
    from ledger.orders import parse_hours, set_order
    from ledger.units import format_hours

    day = parse_day(args.date)
    ordered_ms = parse_hours(args.hours)
    with _ledger(args, settings) as ledger:
        order = set_order(ledger, day, ordered_ms, args.firm)
    kind = "ferme" if order.firm else "indicative"
    print(f"Commande {kind} du {day.isoformat()} : {format_hours(order.ordered_ms)} h.")
    return 0


def run_orders_list(args: argparse.Namespace, settings: Settings) -> int:
    from ledger.csv_io import format_instant
    from ledger.months import Month
    from ledger.orders import month_orders
    from ledger.units import format_hours

    month = Month.parse(args.month)
    with _ledger(args, settings) as ledger:
        found = month_orders(ledger, month, history=args.history)
        lines = ["date,hours,firm,recorded_at"]
        lines += [f"{o.day.isoformat()},{format_hours(o.ordered_ms)},"
                  f"{'true' if o.firm else 'false'},"
                  f"{format_instant(o.recorded_at_ms, ledger.calendar.tz)}" for o in found]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
