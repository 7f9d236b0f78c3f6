"""The billing page over HTTP: the SC3.2 month as ``voicebot report sc32`` computes it, the
95 % and 110 % lines, exports identical to the command's (and logged), order entry with the
same rules as ``voicebot orders set``, and the role check."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from datetime import date, time

import pytest
from console_support import csrf_of
from supervision_data import Call, write_calls

from bot.settings import PROJECT_ROOT
from ledger.orders import set_order

DAY_A, DAY_B = date(2026, 3, 10), date(2026, 3, 16)
CALLS = [
    Call("f1", DAY_A, time(9, 0), "aide_logement", duration_s=40, caller="+33611111111"),
    Call("f2", DAY_A, time(9, 30), "rsa", duration_s=50, message_ms=10_000, listened_ms=7_000,
         caller="+33622222222"),  # 70 % heard: not productive
    Call("f3", DAY_B, time(14, 0), "rsa", duration_s=40, caller="+33633333333"),
    Call("f4", DAY_B, time(15, 0), "rsa", duration_s=40, caller="+33644444444"),
]


@pytest.fixture
def month(console_ledger, console_settings):
    write_calls(console_ledger, console_settings.paths.state_dir, CALLS)
    set_order(console_ledger, DAY_A, 36_000, firm=True)  # 0.01 h; 40 s done: 111 %
    set_order(console_ledger, DAY_B, 360_000, firm=False)  # 0.1 h; 80 s done: 22 %


@pytest.fixture
def billing(console_app, make_user, login):
    login(console_app, "bertrand", make_user("bertrand", "facturation"))
    return console_app


def voicebot(settings, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "VOICEBOT_PATHS_STATE_DIR": str(settings.paths.state_dir)}
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", *args], env=env,
                          capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return done


def row_of(html: str, day: str) -> list[str]:
    match = re.search(rf'<th scope="row">{re.escape(day)}</th>(.*?)</tr>', html, re.S)
    assert match, f"no row for {day}"
    return [re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", match.group(1), re.S)]


def test_the_month_page_has_the_daily_table_with_the_95_and_110_percent_lines(month, billing):
    page = billing.get("/facturation?mois=2026-03")
    assert page.status_code == 200 and "mars 2026" in page.text
    # interactions, productive, hours, ordered, kind, 95 %, 110 %, done %, billable, state
    assert row_of(page.text, "10/03/2026") == [
        "2", "1", "0.0111", "0.0100", "ferme", "0.0095", "0.0110", "111.11", "0.0110",
        "au-delà de 110 %"]
    assert row_of(page.text, "16/03/2026") == [
        "2", "2", "0.0222", "0.1000", "indicative", "0.0950", "0.1100", "22.22", "0.0222",
        "sous 95 %"]
    assert row_of(page.text, "11/03/2026")[-1] == "sans commande"
    assert row_of(page.text, "Total")[:4] == ["4", "3", "0.0333", "0.1100"]
    assert "0.0332" in row_of(page.text, "Total")  # billable: 0.0110 capped + 0.0222
    assert page.text.count('<svg class="chart"') == 1
    assert "heures commandées" in page.text and "Mois ouvert" in page.text


def test_exports_are_the_commands_extraction_and_each_is_logged(month, billing,
                                                                console_settings):
    for fmt in ("csv", "xml"):
        reply = billing.get(f"/facturation/sc32.{fmt}?mois=2026-03")
        assert reply.status_code == 200
        assert reply.headers["content-disposition"] == f'attachment; filename="sc32-2026-03.{fmt}"'
        cli = voicebot(console_settings, "report", "sc32", "--month", "2026-03", "--format", fmt)
        assert reply.text == cli.stdout
    assert "2026-03-16,2,2,80.000,0.0222" in billing.get("/facturation/sc32.csv?mois=2026-03").text
    entries = billing.app.state.audit.entries(user="bertrand")
    assert [e.action for e in entries if e.action.startswith("export")] == \
        ["export_sc32_csv", "export_sc32_xml", "export_sc32_csv"]
    assert entries[-1].object == "extraction SC3.2 2026-03 (CSV)"


def test_an_order_entered_in_the_page_is_the_commands_order(month, billing, console_settings):
    page = billing.get("/facturation?mois=2026-03")
    reply = billing.post("/facturation/commandes", data={
        "date": "2026-03-20", "heures": "7.5", "ferme": "1", "csrf_token": csrf_of(page.text)},
        follow_redirects=True)
    assert reply.status_code == 200
    assert "Commande enregistrée : 2026-03-20 : 7.5000 h (ferme)" in reply.text
    assert row_of(reply.text, "20/03/2026")[3:5] == ["7.5000", "ferme"]
    listed = voicebot(console_settings, "orders", "list", "--month", "2026-03").stdout
    assert "2026-03-20,7.5000,true," in listed
    # The command's rules hold in the page: an indicative order does not replace a firm one.
    refused = billing.post("/facturation/commandes", data={
        "date": "2026-03-20", "heures": "3", "csrf_token": csrf_of(page.text)},
        follow_redirects=True)
    assert "Une commande ferme existe déjà pour le 2026-03-20" in refused.text
    comma = billing.post("/facturation/commandes", data={
        "date": "2026-03-21", "heures": "12,5", "csrf_token": csrf_of(page.text)},
        follow_redirects=True)
    assert "utilisez le point comme séparateur décimal" in comma.text
    assert "2026-03-21" not in voicebot(console_settings, "orders", "list", "--month",
                                        "2026-03").stdout
    outcomes = [(e.action, e.outcome) for e in billing.app.state.audit.entries(action="commande")]
    assert outcomes == [("commande", "ok"), ("commande", "refuse"), ("commande", "refuse")]


def test_an_order_without_its_form_token_is_refused(month, billing):
    reply = billing.post("/facturation/commandes", data={"date": "2026-03-20", "heures": "1"})
    assert reply.status_code == 403
    assert not billing.app.state.audit.entries(action="commande")


def test_billing_is_refused_to_other_roles(month, console_app, make_user, login):
    for role in ("superviseur", "editeur", "auditeur", "admin"):
        console_app.cookies.clear()
        login(console_app, f"user-{role}", make_user(f"user-{role}", role))
        for url in ("/facturation", "/facturation/sc32.csv?mois=2026-03"):
            assert console_app.get(url).status_code == 403, (role, url)
        page = console_app.get("/")
        reply = console_app.post("/facturation/commandes", data={
            "date": "2026-03-22", "heures": "1", "csrf_token": csrf_of(page.text)})
        assert reply.status_code == 403, role
    assert not console_app.app.state.audit.entries(action="export_sc32_csv")


def test_closing_a_month_in_the_page_is_the_commands_closing(month, billing, console_settings):
    page = billing.get("/facturation?mois=2026-03")
    assert "Mois ouvert" in page.text
    unconfirmed = billing.post("/facturation/cloture", data={
        "mois": "2026-03", "csrf_token": csrf_of(page.text)}, follow_redirects=True)
    assert "Cochez la case de confirmation" in unconfirmed.text
    closed = billing.post("/facturation/cloture", data={
        "mois": "2026-03", "confirmer": "1", "csrf_token": csrf_of(page.text)},
        follow_redirects=True)
    digest = hashlib.sha256(voicebot(console_settings, "report", "sc32", "--month",
                                     "2026-03").stdout.encode()).hexdigest()
    assert f"Mois clos. Empreinte SHA-256 de l'extraction : <code>{digest}</code>" in \
        closed.text
    assert "par bertrand" in closed.text and "Clôturer le mois" not in closed.text
    again = voicebot(console_settings, "report", "sc32", "--month", "2026-03", "--close")
    assert "déjà clos" in again.stderr and "bertrand" in again.stderr and digest in again.stderr
    # A month not over yet cannot be closed (the command's rule).
    current = date.today().strftime("%Y-%m")
    refused = billing.post("/facturation/cloture", data={
        "mois": current, "confirmer": "1", "csrf_token": csrf_of(page.text)},
        follow_redirects=True)
    assert f"Le mois {current} n&#39;est pas terminé" in refused.text  # an escaped message
    outcomes = [(e.object, e.outcome)
                for e in billing.app.state.audit.entries(action="cloture_mois")]
    assert outcomes == [(f"mois 2026-03 (SHA-256 {digest})", "ok"),
                        (f"mois {current}", "refuse")]
