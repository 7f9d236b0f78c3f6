"""The commands as scripts call them: exact names, flags, exit codes, output and French errors."""

from __future__ import annotations

from ledger_builders import DATA, SC32_MARCH

MARCH = DATA / "march_2024.csv"



def test_import_report_export_round_trip(run, tmp_path):
    assert run("ledger", "import", MARCH) == (
        0, "19 ligne(s) lue(s) : 19 ajoutée(s), 0 déjà présente(s) à l'identique.\n", "")
    assert run("ledger", "import", MARCH)[1] == \
        "19 ligne(s) lue(s) : 0 ajoutée(s), 19 déjà présente(s) à l'identique.\n"
    assert run("report", "sc32", "--month", "2024-03") == (0, SC32_MARCH, "")
    code, out, _ = run("ledger", "export", "--month", "2024-03")
    assert code == 0 and out.count("\n") == 19 and "pseudo:" in out
    assert (tmp_path / "state" / "ledger.sqlite").exists()


def test_db_option_takes_a_url_or_a_sqlite_path(run, tmp_path):
    audit = tmp_path / "audit.sqlite"
    assert run("ledger", "import", MARCH, "--db", audit)[0] == 0
    assert run("report", "sc32", "--month", "2024-03", "--db", f"sqlite:///{audit}")[1] == \
        SC32_MARCH
    assert run("report", "sc32", "--month", "2024-03")[1].splitlines()[-1] == \
        "total,0,0,0.000,0.0000"  # the configured database is another one


def test_db_url_from_the_environment(run, tmp_path, monkeypatch, pg_url):
    monkeypatch.setenv("VOICEBOT_DB_URL", pg_url)
    assert run("ledger", "import", MARCH)[0] == 0
    assert run("report", "sc32", "--month", "2024-03", "--format", "json")[1].startswith(
        '{"month": "2024-03", "timezone": "Europe/Paris", "rule3": "later_advisor", "rows": '
        '[{"date": "2024-03-01", "interactions": 6, "productive": 2, "productive_seconds": 330.5, '
        '"productive_hours": 0.0918}')
    assert not (tmp_path / "state" / "ledger.sqlite").exists()


def test_bad_file_exits_2_with_every_line_in_french(run, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(MARCH.read_text().replace(",rsa,30,22.5,", ",rsa,30,22,5,")
                   .replace("2024-03-15T10:00:00+01:00", "2024-03-15T10:00:00"), encoding="utf-8")
    code, out, err = run("ledger", "import", bad)
    assert (code, out) == (2, "")
    assert err == (
        f"Erreur : {bad} : 2 erreur(s), rien n'a été importé.\n"
        "  bad.csv, ligne 3 : 10 colonne(s) au lieu de 9 (call_id,channel,caller,started_at,"
        "ended_at,motif,message_s,listened_s,handoff)\n"
        "  bad.csv, ligne 16 : started_at « 2024-03-15T10:00:00 » sans décalage horaire : "
        "ajoutez +01:00, +02:00 ou Z (heure de Paris en hiver, en été, ou UTC)\n")
    assert run("report", "sc32", "--month", "2024-03")[1].splitlines()[-1] == \
        "total,0,0,0.000,0.0000"


def test_report_formats_and_files(run, tmp_path):
    run("ledger", "import", MARCH)
    code, out, _ = run("report", "sc32", "--month", "2024-03", "--format", "xml")
    assert code == 0 and out.startswith("<?xml version='1.0' encoding='utf-8'?>\n<sc32 ")
    target = tmp_path / "out" / "sc32.csv"
    assert run("report", "sc32", "--month", "2024-03", "-o", target) == \
        (0, "", f"Écrit : {target}\n")
    assert target.read_text() == SC32_MARCH
    code, out, _ = run("report", "sc32", "--month", "2024-03", "--detail")
    assert out.splitlines()[1] == ("a1,2024-03-01,2024-03-01T09:00:00.000+01:00,"
                                   "2024-03-01T09:02:00.000+01:00,120.000,false,later_advisor")
    for kind in ("daily", "weekly", "monthly"):
        code, out, _ = run("report", kind, "--month", "2024-03", "--format", "xml")
        assert code == 0 and f'<report kind="{kind}" month="2024-03"' in out
    png = tmp_path / "mars.png"
    assert run("report", "plot", "--month", "2024-03", "-o", png)[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_orders_set_and_list(run):
    assert run("orders", "set", "--date", "2024-03-15", "--hours", "12.5") == \
        (0, "Commande indicative du 2024-03-15 : 12.5000 h.\n", "")
    assert run("orders", "set", "--date", "2024-03-15", "--hours", "13", "--firm")[1] == \
        "Commande ferme du 2024-03-15 : 13.0000 h.\n"
    code, out, err = run("orders", "set", "--date", "2024-03-15", "--hours", "9")
    assert code == 2 and "Une commande ferme existe déjà pour le 2024-03-15" in err
    lines = run("orders", "list", "--month", "2024-03")[1].splitlines()
    assert lines[0] == "date,hours,firm,recorded_at"
    assert lines[1].startswith("2024-03-15,13.0000,true,") and len(lines) == 2
    assert len(run("orders", "list", "--month", "2024-03", "--history")[1].splitlines()) == 3
    code, _, err = run("orders", "set", "--date", "15/03/2024", "--hours", "1")
    assert (code, err) == (2, "Erreur : Date « 15/03/2024 » invalide : attendu AAAA-MM-JJ "
                              "(ex. 2024-03-15).\n")
    code, _, err = run("report", "sc32", "--month", "2024-3")
    assert (code, err) == (2, "Erreur : Mois « 2024-3 » invalide : attendu AAAA-MM "
                              "(ex. 2024-03).\n")


def test_purge_replay_migrate_and_transcript(run):
    from ledger.db import head_revision

    assert run("ledger", "migrate") == (0, f"Schéma à jour (révision {head_revision()}).\n", "")
    assert run("ledger", "replay-spool")[1] == \
        "0 événement(s) en attente : 0 ajouté(s), 0 déjà présent(s), 0 en conflit.\n"
    code, out, _ = run("ledger", "purge", "--dry-run")
    assert code == 0 and out.endswith("seraient supprimés (0 fichier(s) audio) ; "
                                      "lignes de facturation conservées.\n")
    assert run("ledger", "transcript", "absent")[:2] == (1, "")


def test_unreachable_database_is_a_french_error(run, tmp_path):
    url = f"postgresql+psycopg2://ledger@/x?host={tmp_path}/nowhere&port=5432"
    code, out, err = run("report", "sc32", "--month", "2024-03", "--db", url)
    assert (code, out) == (2, "")
    assert err.startswith("Erreur : Base du registre injoignable (postgresql+psycopg2://ledger@/x")
    assert err.endswith("Vérifiez qu'elle est démarrée et l'adresse (--db ou VOICEBOT_DB_URL).\n")
