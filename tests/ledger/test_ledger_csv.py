"""CSV import and export: exact values, every bad line named, all or nothing, idempotent."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import sqlalchemy as sa
from ledger_builders import DATA

from ledger import store
from ledger.csv_io import (
    HEADER,
    CsvInvalidError,
    _FieldError,
    format_instant,
    import_csv,
    parse_instant,
    parse_seconds,
    write_csv,
)
from ledger.months import Month
from ledger.reports import judge_month, render_sc32
from ledger.rule import Calendar
from ledger.schema import interactions, journal

MARCH = DATA / "march_2024.csv"
GOOD = "c1,bot,0612345678,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,9,false"


def write(tmp_path: Path, *lines: str, name: str = "in.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return path


def count_rows(ledger) -> int:
    with ledger.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar_one()


def errors_of(excinfo) -> list[str]:
    return [str(e) for e in excinfo.value.errors]


def export_text(ledger, month: str | None = None) -> str:
    out = io.StringIO()
    bounds = Month.parse(month).bounds_ms(ledger.calendar) if month else (None, None)
    with ledger.engine.connect() as conn:
        write_csv(store.rows_between(conn, *bounds), out, ledger.calendar.tz)
    return out.getvalue()


# --- values at the edge --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("0", 0), ("1", 1000), ("1.1", 1100), ("1.10", 1100), ("1.100", 1100), ("0.001", 1),
    ("12.345", 12345), ("3600", 3_600_000), ("007.5", 7500),
])
def test_seconds_are_exact_milliseconds(text, expected):
    assert parse_seconds(text, "message_s") == expected


@pytest.mark.parametrize(("text", "message"), [
    ("1.2345", "message_s « 1.2345 » a plus de 3 décimales (précision : la milliseconde)"),
    ("1,5", "message_s « 1,5 » : utilisez le point comme séparateur décimal (ex. 1.5)"),
    ("-1", "message_s « -1 » : une durée ne peut pas être négative"),
    ("", "message_s vide (durée en secondes attendue, ex. 12.345)"),
    ("1e3", "message_s « 1e3 » invalide : durée en secondes attendue, au plus 3 décimales "
            "(ex. 12.345)"),
    ("1.", "message_s « 1. » invalide : durée en secondes attendue, au plus 3 décimales "
           "(ex. 12.345)"),
    (" 1", "message_s «  1 » invalide : durée en secondes attendue, au plus 3 décimales "
           "(ex. 12.345)"),
])
def test_bad_seconds_have_french_messages(text, message):
    with pytest.raises(_FieldError) as caught:
        parse_seconds(text, "message_s")
    assert str(caught.value) == message


@pytest.mark.parametrize(("text", "utc"), [
    ("2024-03-01T10:00:00+01:00", "2024-03-01T09:00:00.000+00:00"),
    ("2024-03-01T10:00:00+0100", "2024-03-01T09:00:00.000+00:00"),
    ("2024-03-01T10:00:00+01", "2024-03-01T09:00:00.000+00:00"),
    ("2024-03-01 10:00:00+01:00", "2024-03-01T09:00:00.000+00:00"),
    ("2024-03-01T09:00:00Z", "2024-03-01T09:00:00.000+00:00"),
    ("2024-03-01T09:00:00.5Z", "2024-03-01T09:00:00.500+00:00"),
    ("2024-03-01T09:00:00.123-03:30", "2024-03-01T12:30:00.123+00:00"),
    ("2024-02-29T23:59:59.999+00:00", "2024-02-29T23:59:59.999+00:00"),
])
def test_instants_with_any_offset(text, utc):
    from zoneinfo import ZoneInfo

    assert format_instant(parse_instant(text, "started_at"), ZoneInfo("UTC")) == utc


@pytest.mark.parametrize(("text", "message"), [
    ("2024-03-01T10:00:00",
     "started_at « 2024-03-01T10:00:00 » sans décalage horaire : "
     "ajoutez +01:00, +02:00 ou Z (heure de Paris en hiver, en été, ou UTC)"),
    ("2024-03-01T10:00:00.1234+01:00", "started_at « 2024-03-01T10:00:00.1234+01:00 » a plus de "
                                       "3 décimales de seconde (précision : la milliseconde)"),
    ("2023-02-29T10:00:00Z", "started_at « 2023-02-29T10:00:00Z » : date inexistante"),
    ("2024-03-01T24:00:00Z", "started_at « 2024-03-01T24:00:00Z » : heure inexistante"),
    ("01/03/2024 10:00", "started_at « 01/03/2024 10:00 » invalide : date et heure ISO 8601 avec "
                         "décalage attendues (ex. 2024-03-01T10:00:00+01:00)"),
])
def test_bad_instants_have_french_messages(text, message):
    with pytest.raises(_FieldError) as caught:
        parse_instant(text, "started_at")
    assert str(caught.value) == message


def test_export_writes_paris_time_with_the_offset_of_the_day():
    tz = Calendar().tz
    assert format_instant(parse_instant("2024-03-31T00:59:59.999Z", "x"), tz) == \
        "2024-03-31T01:59:59.999+01:00"
    assert format_instant(parse_instant("2024-03-31T01:00:00Z", "x"), tz) == \
        "2024-03-31T03:00:00.000+02:00"


# --- import: all or nothing, every bad line ------------------------------------------------------
def test_one_bad_row_rejects_the_whole_file_and_lists_every_bad_line(any_ledger, tmp_path):
    path = write(
        tmp_path,
        GOOD,
        "c2,robot,0612345678,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,9,false",
        "c3,bot,06 12 34,2024-03-01T10:00:00+01:00,2024-03-01T09:01:00+01:00,rsa,10,11,oui",
        "c4,bot,,2024-03-01T10:00:00,2024-03-01T10:01:00+01:00,,1.2345,1,false",
        "c5,bot,anonymous,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,9",
        "c6,bot,anonymous,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,RSA!,10,9,false",
        "c7,bot,pseudo:1234,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,9,false",
        "c8,bot,anonymous,1999-12-31T10:00:00+01:00,1999-12-31T10:01:00+01:00,rsa,10,9,false",
        "c9,bot,anonymous,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,12,false",
        "c1,bot,0612345678,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,8,false",
    )
    with pytest.raises(CsvInvalidError) as caught:
        import_csv(any_ledger, path)
    caller_help = ("caller invalide : numéro de téléphone non reconnu (formats acceptés : "
                   "+33 1 99 00 12 34, 0199001234, 0033199001234, 01.99.00.12.34, "
                   "pseudo:<64 hexadécimaux> ; vide ou anonymous si le numéro est masqué)")
    assert errors_of(caught) == [
        "ligne 3 : channel « robot » invalide (valeurs possibles : bot, advisor)",
        f"ligne 4 : {caller_help}",
        "ligne 4 : handoff « oui » invalide (valeurs possibles : true, false)",
        "ligne 4 : ended_at antérieur à started_at",
        "ligne 4 : listened_s (11.000) dépasse message_s (10.000)",
        "ligne 5 : started_at « 2024-03-01T10:00:00 » sans décalage horaire : ajoutez +01:00, "
        "+02:00 ou Z (heure de Paris en hiver, en été, ou UTC)",
        "ligne 5 : motif vide (obligatoire pour une interaction du bot)",
        "ligne 5 : message_s « 1.2345 » a plus de 3 décimales (précision : la milliseconde)",
        "ligne 6 : 8 colonne(s) au lieu de 9 (call_id,channel,caller,started_at,ended_at,motif,"
        "message_s,listened_s,handoff)",
        "ligne 7 : motif « RSA! » invalide (identifiant de knowledge/motifs.yml attendu : "
        "minuscules, chiffres et _, 64 caractères au plus)",
        f"ligne 8 : {caller_help}",
        "ligne 9 : started_at hors de la plage 2000–2099",
        "ligne 10 : listened_s (12.000) dépasse message_s (10.000)",
        "ligne 11 : call_id « c1 » déjà présent ligne 2 avec d'autres valeurs",
    ]
    assert count_rows(any_ledger) == 0
    assert str(caught.value).startswith(f"{path} : 14 erreur(s), rien n'a été importé.\n"
                                        "  in.csv, ligne 3 : channel « robot »")


def test_ended_before_started_is_an_error(sqlite_ledger, tmp_path):
    path = write(tmp_path, "c1,bot,,2024-03-01T10:00:00+01:00,2024-03-01T09:59:59.999+01:00,"
                           "rsa,1,1,false")
    with pytest.raises(CsvInvalidError) as caught:
        import_csv(sqlite_ledger, path)
    assert errors_of(caught) == ["ligne 2 : ended_at antérieur à started_at"]


def test_line_numbers_count_physical_lines(sqlite_ledger, tmp_path):
    path = write(tmp_path, GOOD, "", '"c2\nx",bot,,2024-03-01T10:00:00+01:00,'
                 "2024-03-01T10:01:00+01:00,rsa,1,1,false", "c3,bot,,bad,bad,rsa,1,1,false")
    with pytest.raises(CsvInvalidError) as caught:
        import_csv(sqlite_ledger, path)
    assert [e.line for e in caught.value.errors] == [4, 6, 6]
    assert caught.value.errors[0].message.startswith("call_id contient des espaces")


def test_wrong_header_is_reported_on_line_1(sqlite_ledger, tmp_path):
    path = write(tmp_path, GOOD, header=HEADER.replace(",", ";"))
    with pytest.raises(CsvInvalidError) as caught:
        import_csv(sqlite_ledger, path)
    assert errors_of(caught) == [
        f"ligne 1 : en-tête attendu « {HEADER} », trouvé « {HEADER.replace(',', ';')} » "
        "(séparateur attendu : la virgule)"]


def test_not_utf8_is_reported_with_its_line(sqlite_ledger, tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEADER}\n{GOOD}\nc2,bot,,x,x,r\xe9sum\xe9,1,1,false\n".encode("latin-1"))
    with pytest.raises(CsvInvalidError) as caught:
        import_csv(sqlite_ledger, path)
    assert errors_of(caught) == [
        "ligne 3 : le fichier n'est pas en UTF-8 (octet 0xE9 : probablement Latin-1 ou "
        "Windows-1252) ; enregistrez-le en « CSV UTF-8 »"]


def test_bom_and_crlf_from_spreadsheets_are_accepted(sqlite_ledger, tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(("\ufeff" + HEADER + "\r\n" + GOOD + "\r\n").encode("utf-8"))
    assert import_csv(sqlite_ledger, path).inserted == 1


# --- import: idempotent, conflicts ---------------------------------------------------------------
def test_reimporting_the_same_file_changes_nothing(any_ledger):
    first = import_csv(any_ledger, MARCH)
    before = render_sc32(judge_month(any_ledger, Month(2024, 3)), "csv")
    second = import_csv(any_ledger, MARCH)
    assert (first.rows, first.inserted, first.unchanged) == (19, 19, 0)
    assert (second.rows, second.inserted, second.unchanged) == (19, 0, 19)
    assert count_rows(any_ledger) == 19
    assert render_sc32(judge_month(any_ledger, Month(2024, 3)), "csv") == before


def test_other_values_under_a_stored_call_id_reject_the_file(any_ledger, tmp_path):
    import_csv(any_ledger, write(tmp_path, GOOD, name="first.csv"))
    changed = GOOD.replace(",10,9,", ",10,9.5,")
    new = GOOD.replace("c1,", "c2,")
    path = write(tmp_path, new, changed, name="second.csv")
    with pytest.raises(CsvInvalidError) as caught:
        import_csv(any_ledger, path)
    assert errors_of(caught) == [
        "ligne 3 : call_id « c1 » déjà enregistré dans la base avec d'autres valeurs "
        "(listened_s) ; une ligne enregistrée ne se modifie pas"]
    assert count_rows(any_ledger) == 1  # c2 was not written either


def test_same_number_in_another_format_is_the_same_row(sqlite_ledger, tmp_path):
    import_csv(sqlite_ledger, write(tmp_path, GOOD, name="first.csv"))
    again = write(tmp_path, GOOD.replace("0612345678", "+33 6 12 34 56 78"), name="again.csv")
    assert import_csv(sqlite_ledger, again).unchanged == 1


def test_call_ids_with_backslashes_and_quotes_survive_the_bulk_insert(any_ledger, tmp_path):
    odd = 'x\\y"z;1@host'
    path = write(tmp_path, GOOD.replace("c1,", '"' + odd.replace('"', '""') + '",'))
    assert import_csv(any_ledger, path).inserted == 1
    assert export_text(any_ledger).splitlines()[1].startswith('"x\\y""z;1@host",bot,pseudo:')
    assert import_csv(any_ledger, path).unchanged == 1


def test_identical_duplicate_lines_in_one_file_are_one_row(sqlite_ledger, tmp_path):
    result = import_csv(sqlite_ledger, write(tmp_path, GOOD, GOOD))
    assert (result.rows, result.inserted) == (1, 1)


def test_import_is_journaled_with_the_file_digest(sqlite_ledger):
    import hashlib

    result = import_csv(sqlite_ledger, MARCH)
    with sqlite_ledger.engine.connect() as conn:
        kind, detail = conn.execute(sa.select(journal.c.kind, journal.c.detail)).one()
    assert kind == "import"
    assert result.sha256 == hashlib.sha256(MARCH.read_bytes()).hexdigest()
    assert f'"sha256": "{result.sha256}"' in detail and '"inserted": 19' in detail


# --- export: reversible --------------------------------------------------------------------------
def test_export_then_import_elsewhere_reproduces_the_extraction(any_ledger, tmp_path, settings):
    from ledger.api import Ledger

    import_csv(any_ledger, MARCH)
    exported = tmp_path / "export.csv"
    exported.write_text(export_text(any_ledger), encoding="utf-8")
    assert "0612345678" not in exported.read_text()

    audit = Ledger.open(settings, f"sqlite:///{tmp_path / 'audit.sqlite'}",
                        require_database=True)
    try:
        assert import_csv(audit, exported).inserted == 19
        assert export_text(audit) == exported.read_text()
        for month in (Month(2024, 3), Month(2024, 4)):
            assert render_sc32(judge_month(audit, month), "csv") == \
                render_sc32(judge_month(any_ledger, month), "csv")
    finally:
        audit.close()


def test_export_of_a_month_uses_paris_days(sqlite_ledger):
    import_csv(sqlite_ledger, MARCH)
    march = export_text(sqlite_ledger, "2024-03").splitlines()
    april = export_text(sqlite_ledger, "2024-04").splitlines()
    assert march[0] == HEADER and april[0] == HEADER
    assert [line.split(",")[0] for line in april[1:]] == ["h1"]
    assert len(march) == 1 + 18
    g1 = next(line for line in march if line.startswith("g1,"))
    assert g1 == ("g1,bot,,2024-03-31T01:59:30.000+01:00,2024-03-31T03:00:30.000+02:00,"
                  "date_paiement,10.000,9.000,false")
    c2 = next(line for line in march if line.startswith("c2,"))
    assert c2 == ("c2,advisor,,2024-03-01T14:00:00.000+01:00,"
                  "2024-03-01T14:10:00.000+01:00,,0.000,0.000,false")
