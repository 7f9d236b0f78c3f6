"""A closed month keeps the figures it was billed on; whatever would change them is reported."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ledger_builders import DATA, SC32_MARCH, interaction, paris

from ledger import RecordResult
from ledger.api import _event
from ledger.csv_io import HEADER
from ledger.records import Row
from ledger.rule import Channel, to_epoch_ms
from ledger.store import NO_EXTRAS

MARCH = DATA / "march_2024.csv"
LATE_ADVISOR = ("late-adv,advisor,0711223344,2024-03-15T11:00:00+01:00,"
                "2024-03-15T11:10:00+01:00,,,,")
"""Reaches an advisor after k1 (2024-03-15, productive 100 s): voids it by rule 3."""



def csv_file(tmp_path: Path, name: str, *lines: str) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def test_close_stores_the_extraction_with_its_hash(run):
    assert run("ledger", "import", MARCH)[0] == 0
    code, out, err = run("report", "sc32", "--month", "2024-03", "--close")
    digest = hashlib.sha256(SC32_MARCH.encode()).hexdigest()
    assert (code, out) == (0, SC32_MARCH)
    assert err == f"Mois 2024-03 clos : extraction CSV enregistrée, SHA-256 {digest}.\n"
    code, out, err = run("report", "sc32", "--month", "2024-03", "--close", "--format", "json")
    assert code == 0 and out.startswith('{"month": "2024-03"')
    assert err.startswith("Mois 2024-03 déjà clos le ") and err.endswith(f"SHA-256 {digest}.\n")


def test_an_import_that_would_change_a_closed_month_is_refused_with_the_days(run, tmp_path):
    run("ledger", "import", MARCH)
    run("report", "sc32", "--month", "2024-03", "--close")
    before = run("ledger", "export")[1]
    path = csv_file(tmp_path, "late.csv", LATE_ADVISOR,
                    "new-bot,bot,0699999999,2024-03-02T10:00:00+01:00,2024-03-02T10:01:00+01:00,"
                    "rsa,10,10,false",
                    "april,bot,0699999999,2024-04-02T10:00:00+02:00,2024-04-02T10:01:00+02:00,"
                    "rsa,10,10,false")
    code, out, err = run("ledger", "import", path)
    assert (code, out) == (2, "")
    lines = err.splitlines()
    assert lines[0] == (f"Erreur : {path} : refusé, rien n'a été importé : le registre d'un mois "
                        "clos ne change plus (sa facturation est faite).")
    assert lines[1].startswith("Mois 2024-03 clos (extraction facturée, SHA-256 ")
    assert lines[1].endswith(") : 2 ligne(s) en changeraient les chiffres :")
    assert lines[2:] == [
        "  2024-03-02 : interactions 3 → 4, productives 2 → 3, secondes productives "
        "360.000 → 420.000, heures productives 0.1000 → 0.1167",
        "  2024-03-15 : productives 2 → 1, secondes productives 101.234 → 1.234, "
        "heures productives 0.0281 → 0.0003",
        "  total : interactions 14 → 15, secondes productives 1151.735 → 1111.735, "
        "heures productives 0.3199 → 0.3088",
    ]
    assert run("ledger", "export")[1] == before  # nothing written, April's row included
    assert run("report", "sc32", "--month", "2024-03") == (0, SC32_MARCH, "")


def test_rows_that_change_no_figure_or_another_month_are_imported(run, tmp_path):
    run("ledger", "import", MARCH)
    run("report", "sc32", "--month", "2024-03", "--close")
    path = csv_file(tmp_path, "harmless.csv",
                    # an advisor contact before the caller's bot calls, a withheld one
                    "early-adv,advisor,0711223344,2024-03-15T08:00:00+01:00,"
                    "2024-03-15T08:10:00+01:00,,,,",
                    "anon-adv,advisor,,2024-03-31T12:00:00+02:00,2024-03-31T12:01:00+02:00,,,,",
                    "april,bot,0699999999,2024-04-02T10:00:00+02:00,2024-04-02T10:01:00+02:00,"
                    "rsa,10,10,false")
    assert run("ledger", "import", path)[:2] == (
        0, "3 ligne(s) lue(s) : 3 ajoutée(s), 0 déjà présente(s) à l'identique.\n")
    assert run("report", "sc32", "--month", "2024-03") == (0, SC32_MARCH, "")


def test_a_month_not_over_cannot_be_closed(run):
    from datetime import date

    month = date.today().strftime("%Y-%m")
    code, _, err = run("report", "sc32", "--month", month, "--close")
    assert code == 2
    assert err.startswith(f"Erreur : Le mois {month} n'est pas terminé : il ne peut être clos "
                          "qu'à partir du lendemain de son dernier jour (")


def test_spool_replay_and_live_writes_set_aside_what_would_change_a_closed_month(any_ledger,
                                                                                  tmp_path):
    from ledger.closing import CLOSED_MONTH, close_month
    from ledger.csv_io import import_csv
    from ledger.months import Month

    import_csv(any_ledger, MARCH)
    close_month(any_ledger, Month(2024, 3), "test", paris("2024-05-01 00:00").date())
    late = Row("late-adv", Channel.ADVISOR, any_ledger._caller_key("0711223344"),
               to_epoch_ms(paris("2024-03-15 11:00")), to_epoch_ms(paris("2024-03-15 11:10")),
               "", 0, 0, False)
    april = interaction("april-1", start="2024-04-02 10:00")
    any_ledger.spool.append(_event(late, NO_EXTRAS, any_ledger.pseudonymizer.key_id))
    any_ledger.spool.append(_event(any_ledger._bot_row(april)[0], NO_EXTRAS))
    result = any_ledger.replay_spool()
    assert (result.events, result.inserted, result.closed_month) == (2, 1, 1)
    assert result.reports[0].splitlines()[1] == (
        "  2024-03-15 : productives 2 → 1, secondes productives 101.234 → 1.234, "
        "heures productives 0.0281 → 0.0003")
    aside = (any_ledger.spool.directory / CLOSED_MONTH).read_text(encoding="utf-8")
    assert "late-adv" in aside and "2024-03-15 : productives 2 → 1" in aside
    assert not any_ledger.spool.has_pending()
    # A live write into the closed month (a clock gone wrong) is set aside the same way.
    assert any_ledger.record_interaction(interaction("late-bot", start="2024-03-20 10:00")) \
        is RecordResult.CLOSED_MONTH
    assert any_ledger.record_interaction(interaction("april-2", start="2024-04-03 10:00")) \
        is RecordResult.STORED


def test_daily_hours_and_the_total_come_from_the_same_rounding(run, tmp_path):
    """Two days of 180 ms each: each day is 0.00005 h, rounded half up once to 0.0001; the
    total is their sum, so the billed total equals the sum of its lines."""
    path = csv_file(tmp_path, "tiny.csv", *(
        f"t{day},bot,,2024-03-0{day}T10:00:00+01:00,2024-03-0{day}T10:00:00.180+01:00,rsa,"
        "1,1,false" for day in (1, 2)))
    run("ledger", "import", path)
    assert run("report", "sc32", "--month", "2024-03")[1] == (
        "date,interactions,productive,productive_seconds,productive_hours\n"
        "2024-03-01,1,1,0.180,0.0001\n"
        "2024-03-02,1,1,0.180,0.0001\n"
        "total,2,2,0.360,0.0002\n")
    assert '"productive_hours": 0.0002}' in run("report", "sc32", "--month", "2024-03",
                                                 "--format", "json")[1]
