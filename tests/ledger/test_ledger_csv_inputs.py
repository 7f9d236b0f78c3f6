"""Bad CSV files get one French line with file and line, exit code 2, and write nothing;
exports cannot carry spreadsheet formulas; random files never raise anything else."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_builders import DATA

from bot.errors import VoicebotError
from ledger.csv_io import HEADER, read_csv
from ledger.pseudonym import Pseudonymizer

GOOD = "c1,bot,0612345678,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,rsa,10,8,false"



def rows_stored(run) -> int:
    code, out, _ = run("ledger", "export")
    assert code == 0
    return out.count("\n") - 1


@pytest.mark.parametrize(("data", "line", "message"), [
    ((f"{HEADER}\n{GOOD}\nc2,bot,,2024-03-01T10:00:00+01:00,2024-03-01T10:01:00+01:00,"
      "rsa,1\x00,1,false\n").encode(), 3,
     "octet NUL (0x00) : ce n'est pas un fichier CSV texte (fichier binaire, ou copie abîmée)"),
    ((f'{HEADER}\n{GOOD}\n"{"x" * 140_000},bot,,a,b,rsa,1,1,false\n').encode(), 3,
     "champ de plus de 128 Kio : guillemet non refermé, ou fichier qui n'est pas ce CSV"),
    ((f"{HEADER}\n{GOOD}\n\nc2,bot,,x,x,r\xe9sum\xe9,1,1,false\n").encode("latin-1"), 4,
     "le fichier n'est pas en UTF-8 (octet 0xE9 : probablement Latin-1 ou Windows-1252) ; "
     "enregistrez-le en « CSV UTF-8 »"),
    ((f"{HEADER}\n{GOOD}\n").encode("utf-16-le"), 1,
     "fichier en UTF-16 sans BOM : enregistrez-le en « CSV UTF-8 »"),
    (codecs.BOM_UTF16_LE + f"{HEADER}\n{GOOD}\nc2\n".encode("utf-16-le")[:-3], 3,
     "fichier UTF-16 abîmé (caractère illisible)"),
])
def test_unreadable_files_get_one_french_line_and_write_nothing(run, tmp_path, data, line,
                                                                 message):
    assert run("ledger", "import", DATA / "march_2024.csv")[0] == 0
    before = rows_stored(run)
    path = tmp_path / "bad.csv"
    path.write_bytes(data)
    code, out, err = run("ledger", "import", path)
    assert (code, out) == (2, "")
    assert err == f"Erreur : {path}, ligne {line} : {message} ; rien n'a été importé.\n"
    assert rows_stored(run) == before


def test_a_long_field_under_the_csv_limit_is_a_line_error_not_echoed(run, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text(f"{HEADER}\n{GOOD}\nc2,bot,,2024-03-01T10:00:00+01:00,"
                    f"2024-03-01T10:01:00+01:00,{'m' * 100_000},1,1,false\n", encoding="utf-8")
    code, _, err = run("ledger", "import", path)
    assert code == 2
    assert err.splitlines()[1] == "  long.csv, ligne 3 : motif de 100000 caractères : au plus 1024"
    assert len(err) < 500


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be"])
def test_bom_files_in_utf8_or_utf16_are_decoded(run, tmp_path, encoding):
    path = tmp_path / "bom.csv"
    data = f"{HEADER}\r\n{GOOD}\r\n".encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    path.write_bytes(data)
    assert run("ledger", "import", path)[:2] == (
        0, "1 ligne(s) lue(s) : 1 ajoutée(s), 0 déjà présente(s) à l'identique.\n")


def test_export_neutralises_formulas_and_reimports_the_same_rows(run, tmp_path):
    call_ids = ["=HYPERLINK(\"http://x\")", "+33612345678", "-1", "@SUM(A1)", "'quoted",
                "plain"]
    source = tmp_path / "formulas.csv"
    with source.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(HEADER.split(","))
        for i, call_id in enumerate(call_ids):
            writer.writerow([call_id, "bot", "", f"2024-03-01T10:0{i}:00+01:00",
                             f"2024-03-01T10:0{i}:30+01:00", "rsa", "10", "8", "false"])
    # An export's neutralised cells are read back as what was stored: import the source
    # through its own export, so the file under test is the neutralised one.
    assert run("ledger", "import", source)[0] == 0
    exported = tmp_path / "export.csv"
    assert run("ledger", "export", "-o", exported)[0] == 0
    cells = [row[0] for row in csv.reader(io.StringIO(exported.read_text(encoding="utf-8")))]
    assert cells[1:] == ["'=HYPERLINK(\"http://x\")", "'+33612345678", "'-1", "'@SUM(A1)",
                         "''quoted", "plain"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in
                   csv.reader(io.StringIO(exported.read_text(encoding="utf-8"))) for cell in row)
    other = tmp_path / "other.sqlite"
    assert run("ledger", "import", exported, "--db", other)[0] == 0
    again = tmp_path / "again.csv"
    assert run("ledger", "export", "--db", other, "-o", again)[0] == 0
    assert again.read_text(encoding="utf-8") == exported.read_text(encoding="utf-8")
    code, out, _ = run("report", "sc32", "--month", "2024-03", "--detail")
    assert all(not line.startswith(("=", "+", "-", "@")) for line in out.splitlines())


PSEUDONYMIZER = Pseudonymizer(b"k" * 32)
cells = st.one_of(st.text(st.characters(blacklist_characters="\x00"), max_size=30), st.sampled_from(
    ["c1", "bot", "advisor", "", "anonymous", "0612345678", "sip:ivr@sbc", "pseudo:" + "a" * 64,
     "2024-03-01T10:00:00+01:00", "2024-03-01T10:00:00", "rsa", "10", "8.5", "1,5", "true",
     "false", "=1+1", "'=x", '"', "\r\n"]))
"""NUL bytes come through ``raw`` (the csv module cannot write them)."""


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(cells, min_size=0, max_size=11), max_size=6),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"]),
       header=st.booleans(), raw=st.binary(max_size=64))
def test_random_files_give_rows_or_french_errors_only(tmp_path, rows, encoding, header, raw):
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(HEADER.split(","))
    writer.writerows(rows)
    try:
        data = out.getvalue().encode(encoding)
    except UnicodeEncodeError:  # e.g. a lone surrogate: bytes no UTF-8 decoder accepts
        data = out.getvalue().encode("utf-8", "surrogatepass")
    path = tmp_path / "random.csv"
    for content in (data, data + raw, raw):
        path.write_bytes(content)
        try:
            parsed, errors, _ = read_csv(path, PSEUDONYMIZER)
        except VoicebotError as exc:
            text = str(exc)
            assert str(path) in text and "ligne " in text
            continue
        for line, row in parsed:
            assert line >= 2 and row.started_at_ms <= row.ended_at_ms
        assert all(error.line >= 2 for error in errors)
