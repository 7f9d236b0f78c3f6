"""Supervisors' pages over HTTP: figures a supervisor reads (and exports), flags, transcripts,
search, the quality sample, the live view, and who may open them.

The calls are written as the call path writes them (supervision_data.py); every expected
figure below is worked out by hand from that data set.
"""

from __future__ import annotations

import asyncio
import csv
import io
import socket
import threading
from datetime import date, time

import pytest
from supervision_data import Call, write_calls

from console.live import NodeView
from ledger import Outcome
from ledger.months import Month
from ledger.stats import CallStats, quality_sample, read_calls, sample_seed

DAY_A = date(2026, 3, 10)  # a Tuesday, ISO week 11
DAY_B = date(2026, 3, 16)  # a Monday, ISO week 12
CALLS = [
    Call("a1", DAY_A, time(9, 0), "aide_logement", caller="+33611111111",
         transcript="Appelant : Je voudrais connaître le montant de mon allocation logement\n"
                    "Bot : Votre aide au logement est versée le 5 du mois.",
         stats=CallStats(2, 1, (800, 1200), 0, 0), satisfaction=4, recording_s=1.0),
    Call("a2", DAY_A, time(10, 0), "rsa", Outcome.HANDOFF, handoff=True, message_ms=0,
         listened_ms=0, caller="+33622222222",
         transcript="Appelant : j'en ai MARRE, ça ne répond jamais\nBot : Je n'ai pas compris.\n"
                    "Appelant : le RSA\nBot : Je vous passe un conseiller.",
         stats=CallStats(3, 2, (900, 5000, 700), 1, 1)),
    Call("a3", DAY_A, time(11, 0), "aide_logement", Outcome.HANGUP, message_ms=10_000,
         listened_ms=4_000, caller="+33633333333",
         transcript="Appelant : Quand est versée la prime d'activité ?\n"
                    "Bot : La prime d'activité est versée chaque mois.",
         stats=CallStats(1, 0, (1000,), 0, 0)),
    Call("b1", DAY_B, time(14, 0), "prime_activite", Outcome.REORIENTED, message_ms=8_000,
         listened_ms=8_000, caller="+33644444444",
         transcript="Appelant : Ma prime d'activite\nBot : Pour cela, appelez le 3939.",
         stats=CallStats(1, 0, (600,), 0, 0), satisfaction=2),
    Call("b2", DAY_B, time(15, 0), "rsa", message_ms=9_000, listened_ms=9_000,
         caller="+33655555555", satisfaction=5),
]
RANGE = f"du={DAY_A}&au={DAY_B}"


@pytest.fixture
def calls(console_ledger, console_settings):
    write_calls(console_ledger, console_settings.paths.state_dir, CALLS)


@pytest.fixture
def supervisor(console_app, make_user, login):
    login(console_app, "sophie", make_user("sophie", "superviseur"))
    return console_app


def audit(client, action: str):
    return client.app.state.audit.entries(action=action)


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_dashboard_csv_gives_the_figures_by_day_motif_and_in_total(calls, supervisor):
    reply = supervisor.get(f"/supervision/tableau.csv?{RANGE}&par=jour")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/csv")
    rows = {(r["period"], r["motif"]): r for r in csv_rows(reply.text)}
    total = rows[("total", "total")]
    assert (total["calls"], total["answered_percent"], total["handoff_percent"],
            total["reoriented_percent"], total["productive_percent"]) == \
        ("5", "40.00", "20.00", "20.00", "60.00")
    assert (total["turns"], total["misunderstood_turns"], total["hangups_during_answer"]) == \
        ("7", "3", "1")
    assert (total["reply_p50_ms"], total["reply_p95_ms"]) == ("900", "5000")
    assert (total["satisfaction_mean"], total["satisfaction_answers"]) == ("3.67", "3")
    day_a = rows[(DAY_A.isoformat(), "total")]
    assert (day_a["calls"], day_a["answered_percent"], day_a["productive_percent"],
            day_a["reply_p50_ms"], day_a["reply_p95_ms"], day_a["satisfaction_mean"]) == \
        ("3", "33.33", "33.33", "900", "5000", "4.00")
    day_b = rows[(DAY_B.isoformat(), "total")]
    assert (day_b["calls"], day_b["reoriented_percent"], day_b["productive_percent"],
            day_b["reply_p95_ms"], day_b["satisfaction_mean"]) == \
        ("2", "50.00", "100.00", "600", "3.50")
    quiet = rows[("2026-03-12", "total")]  # a day without calls is listed, empty
    assert (quiet["calls"], quiet["answered_percent"]) == ("0", "")
    housing = rows[("total", "aide_logement")]
    assert (housing["calls"], housing["hangups_during_answer"], housing["reply_p50_ms"],
            housing["reply_p95_ms"]) == ("2", "1", "1000", "1200")
    assert rows[(DAY_A.isoformat(), "rsa")]["handoff_percent"] == "100.00"


def test_dashboard_groups_by_iso_week_and_month_and_filters_a_motif(calls, supervisor):
    weeks = csv_rows(supervisor.get(f"/supervision/tableau.csv?{RANGE}&par=semaine").text)
    assert [(r["period"], r["calls"]) for r in weeks if r["motif"] == "total"] == \
        [("2026-W11", "3"), ("2026-W12", "2"), ("total", "5")]
    months = csv_rows(supervisor.get(f"/supervision/tableau.csv?{RANGE}&par=mois").text)
    assert [(r["period"], r["calls"]) for r in months if r["motif"] == "total"] == \
        [("2026-03", "5"), ("total", "5")]
    rsa = csv_rows(supervisor.get(f"/supervision/tableau.csv?{RANGE}&par=mois&motif=rsa").text)
    assert {r["motif"] for r in rsa} == {"rsa", "total"}
    assert [r["calls"] for r in rsa if r["period"] == "total" and r["motif"] == "total"] == ["2"]


def test_dashboard_page_draws_its_charts_and_each_csv_export_is_logged(calls, supervisor):
    page = supervisor.get(f"/supervision/tableau?{RANGE}&par=semaine")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 4 and 'role="img"' in page.text
    assert "Appels par motif" in page.text and "aide_logement" in page.text
    assert "900 / 5000 ms" in page.text  # p50 / p95 of the whole range
    assert not audit(supervisor, "export_tableau_csv")  # reading the page is not an export
    supervisor.get(f"/supervision/tableau.csv?{RANGE}&par=semaine")
    [entry] = audit(supervisor, "export_tableau_csv")
    assert entry.user_name == "sophie" and entry.role == "superviseur"
    assert f"{DAY_A}..{DAY_B}" in entry.object and entry.outcome == "ok"
    assert entry.source == "testclient"


def test_dashboard_refuses_a_reversed_range_in_french(supervisor):
    reply = supervisor.get(f"/supervision/tableau?du={DAY_B}&au={DAY_A}")
    assert reply.status_code == 400
    assert "La date de fin (« au ») précède la date de début" in reply.text


def test_calls_are_flagged_and_filtered_by_flag(calls, supervisor):
    page = supervisor.get(f"/supervision/appels?{RANGE}")
    assert all(f"/supervision/appels/{c.call_id}" in page.text for c in CALLS)
    for flag, expected in (("silence", {"a2"}), ("misunderstood", {"a2"}),
                           ("frustration", {"a2"}), ("hangup_during_answer", {"a3"})):
        listed = supervisor.get(f"/supervision/appels?{RANGE}&signal={flag}").text
        shown = {c.call_id for c in CALLS if f"/supervision/appels/{c.call_id}\"" in listed}
        assert shown == expected, flag


def test_a_call_page_shows_its_transcript_and_logs_the_read(calls, supervisor):
    page = supervisor.get("/supervision/appels/a2")
    assert page.status_code == 200
    assert "j&#39;en ai MARRE, ça ne répond jamais" in page.text
    assert "mots de frustration" in page.text and "incompréhension répétée" in page.text
    [entry] = audit(supervisor, "lecture_transcription")
    assert entry.object == "appel a2" and entry.user_name == "sophie"
    one = supervisor.get("/supervision/appels/a1").text
    assert '<audio controls controlsList="nodownload' in one and "4 / 5" in one


def test_transcript_search_ignores_accents_and_case_filters_by_motif_and_is_logged(
        calls, supervisor):
    def found(query: str) -> set[str]:
        text = supervisor.get(f"/supervision/recherche?{RANGE}&{query}").text
        return {c.call_id for c in CALLS if f"/supervision/appels/{c.call_id}\"" in text}

    assert found("mots=allocation") == {"a1"}
    assert found("mots=PRIME+activité") == {"a3", "b1"}
    assert found("mots=prime+activite&motif=aide_logement") == {"a3"}
    assert found("mots=marre") == {"a2"}
    assert found("mots=introuvable") == set()
    searches = audit(supervisor, "recherche_transcriptions")
    assert len(searches) == 5
    assert "« allocation »" in searches[0].object and "1 résultat(s)" in searches[0].object
    page = supervisor.get(f"/supervision/recherche?{RANGE}&mots=allocation").text
    assert "connaître le montant de mon allocation logement" in page


def test_the_monthly_sample_is_reproducible_bounded_and_exported_with_a_log_line(
        console_ledger, console_settings, supervisor):
    april = [Call(f"s{i:02d}", date(2026, 4, 1 + i % 28), time(9 + i % 8, i % 60), "rsa",
                  caller=f"+336{i:08d}") for i in range(60)]
    write_calls(console_ledger, console_settings.paths.state_dir, april)

    def sample(size: int) -> list[str]:
        rows = csv_rows(supervisor.get(f"/supervision/echantillon.csv?mois=2026-04"
                                       f"&taille={size}").text)
        return [r["call_id"] for r in rows]

    first = sample(30)
    assert len(first) == len(set(first)) == 30 and set(first) <= {c.call_id for c in april}
    assert sample(30) == first
    assert len(sample(25)) == 25 and len(sample(50)) == 50
    for wrong in (24, 51):
        reply = supervisor.get(f"/supervision/echantillon?mois=2026-04&taille={wrong}")
        assert reply.status_code == 400 and "de 25 à 50 appels" in reply.text
    assert len(audit(supervisor, "export_echantillon_csv")) == 4
    # Another month draws with another seed: not the same positions among the calls.
    calls = read_calls(console_ledger, date(2026, 4, 1), date(2026, 4, 30))
    assert sample_seed(Month(2026, 4)) != sample_seed(Month(2026, 5))
    assert [c.call_id for c in quality_sample(calls, Month(2026, 5), 30)] != first
    page = supervisor.get("/supervision/echantillon?mois=2026-04&taille=30").text
    assert all(f"/supervision/appels/{call_id}\"" in page for call_id in first)


def test_a_small_month_samples_all_its_calls(calls, supervisor):
    rows = csv_rows(supervisor.get("/supervision/echantillon.csv?mois=2026-03").text)
    assert sorted(r["call_id"] for r in rows) == ["a1", "a2", "a3", "b1", "b2"]
    assert {r["call_id"]: r["satisfaction"] for r in rows}["b2"] == "5"


def test_pages_of_supervisors_are_refused_to_other_roles(calls, console_app, make_user,
                                                         login):
    assert console_app.get("/supervision/tableau", follow_redirects=False).status_code == 303
    for role in ("editeur", "facturation", "auditeur", "admin"):
        console_app.cookies.clear()
        login(console_app, f"user-{role}", make_user(f"user-{role}", role))
        for url in ("/supervision", "/supervision/tableau", f"/supervision/tableau.csv?{RANGE}",
                    "/supervision/appels/a1", "/supervision/recherche?mots=rsa",
                    "/supervision/echantillon.csv?mois=2026-03"):
            reply = console_app.get(url)
            assert reply.status_code == 403, (role, url)
            assert "Accès refusé" in reply.text and "allocation" not in reply.text
    assert not audit(console_app, "lecture_transcription")
    assert not audit(console_app, "export_tableau_csv")


@pytest.fixture
def background_loop():
    """An event loop running in a thread, for a server the console reads while the test's
    client waits on its own loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(10)

    yield run
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def _node_stand_in(body: dict):
    """An HTTP server answering ``/health`` with a node's JSON (the real node's is tested in
    tests/telephony/test_node.py): the console side only reads and shows it."""
    from telephony_adapter.http import HealthServer

    async def health():
        return 200, body

    async def metrics():
        return ""

    server = HealthServer("127.0.0.1", 0, health, metrics)
    await server.start()
    return server


def test_the_live_view_shows_each_nodes_calls_and_a_node_that_does_not_answer(
        console_settings, console_ledger, make_user, login, background_loop):
    from fastapi.testclient import TestClient

    from bot import settings as settings_module
    from console.app import create_app

    body = {"status": "ok", "calls_in_progress": 1, "capacity": 6, "draining": False,
            "live_calls": [{"call_id": "live-1", "worker": "worker-0",
                            "started_at": "2026-03-10T09:00:00+00:00", "duration_s": 75.0,
                            "motif": "aide_logement", "turns": 2}],
            "engine": {"up": True, "pid": 1, "restarts": 1, "calls": 1, "workers_linked": 4},
            "workers_alive": 4, "workers": [], "kamailio": {"up": True}}
    server = background_loop(_node_stand_in(body))
    try:
        dead = f"http://127.0.0.1:{closed_port()}"
        settings = settings_module.replace(
            console_settings, console={"nodes": (f"http://127.0.0.1:{server.port}", dead)})
        with TestClient(create_app(settings, console_ledger),
                        base_url="https://testserver") as client:
            login(client, "sophie", make_user("sophie", "superviseur"))
            page = client.get("/supervision").text
            fragment = client.get("/supervision/direct").text
    finally:
        background_loop(server.stop())
    for html in (page, fragment):
        assert "live-1" in html and "aide_logement" in html and "1 min 15 s" in html
        assert "worker-0" in html and "en service" in html
        assert "1 redémarrage(s)" in html
        assert f"Nœud {dead}" in html and "injoignable" in html
    assert NodeView(dead, False).state == "injoignable"
