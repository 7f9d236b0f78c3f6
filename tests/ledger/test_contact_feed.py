"""The contact centre feeds advisor contacts: a watched drop folder and POST /contacts.

Real files in a real folder, a real aiohttp server on a free port, a real SQLite ledger.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from ledger_builders import ledger_settings_for

from bot import settings as settings_module
from ledger import Ledger
from ledger.contact_feed import ContactFeed, DropFolder
from ledger.csv_io import HEADER
from ledger.months import Month
from ledger.reports import judge_month, render_sc32
from telephony_adapter.http import HealthServer

BOT = ("k1,bot,0711223344,2024-03-15T09:00:00+01:00,2024-03-15T09:01:40+01:00,"
       "suivi_demande,50,50,false")
ADVISOR = "adv-1,advisor,07 11 22 33 44,2024-03-15T10:00:00+01:00,2024-03-15T10:10:00+01:00,,,,"
BAD = "adv-2,advisor,0711223344,2024-03-15T11:00:00,2024-03-15T11:10:00+01:00,,,,"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join([HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def day_line(ledger: Ledger) -> str:
    return render_sc32(judge_month(ledger, Month(2024, 3)), "csv").splitlines()[1]


@pytest.fixture
def ledger(tmp_path: Path):
    opened = Ledger.open(ledger_settings_for(tmp_path / "state"), require_database=True)
    yield opened
    opened.close()


def test_each_dropped_file_is_imported_once_and_filed_with_a_report(ledger, tmp_path):
    inbox = tmp_path / "contacts"
    inbox.mkdir()
    folder = DropFolder(ledger, inbox)
    write(inbox / "bot.csv", BOT)
    assert folder.scan() == [("bot.csv", True)]
    assert day_line(ledger) == "2024-03-15,1,1,100.000,0.0278"
    write(inbox / "lundi.csv", ADVISOR)
    write(inbox / ".en-cours.csv", ADVISOR)  # being written: ignored until renamed
    write(inbox / "mardi.csv.tmp", ADVISOR)
    write(inbox / "mauvais.csv", ADVISOR, BAD)
    assert folder.scan() == [("lundi.csv", True), ("mauvais.csv", False)]
    assert day_line(ledger) == "2024-03-15,1,0,0.000,0.0000"  # rule 3: voided by the advisor
    assert sorted(p.name for p in inbox.iterdir() if p.is_file()) == [".en-cours.csv",
                                                                      "mardi.csv.tmp"]
    report = (inbox / "done" / "lundi.csv.rapport.txt").read_text(encoding="utf-8")
    assert report.startswith("Importé le ")
    assert ": 1 ligne(s) lue(s) : 1 ajoutée(s), 0 déjà présente(s) à l'identique.\n" in report
    rejected = (inbox / "rejected" / "mauvais.csv.rapport.txt").read_text(encoding="utf-8")
    assert rejected.startswith("Refusé le ")
    assert "mauvais.csv, ligne 3 : started_at « 2024-03-15T11:00:00 » sans décalage horaire" \
        in rejected
    assert (inbox / "rejected" / "mauvais.csv").exists()
    # The same file again (the platform resent it): nothing changes, filed beside the first.
    write(inbox / "lundi.csv", ADVISOR)
    assert folder.scan() == [("lundi.csv", True)]
    again = list((inbox / "done").glob("lundi-*.csv.rapport.txt"))
    assert len(again) == 1 and len(list((inbox / "done").iterdir())) == 6
    assert "1 ligne(s) lue(s) : 0 ajoutée(s), 1 déjà présente(s)" in again[0].read_text()


def test_the_watcher_imports_what_is_dropped_while_it_runs(ledger, tmp_path):
    inbox = tmp_path / "contacts"

    async def scenario():
        feed = ContactFeed(ledger, inbox, poll_ms=50, token="")
        feed.start()
        staged = tmp_path / "staged.csv"
        write(staged, BOT, ADVISOR)
        staged.rename(inbox / "flux.csv")  # how the platform drops a file: a rename
        async with feed.scanned:
            await asyncio.wait_for(feed.scanned.wait_for(
                lambda: (inbox / "done" / "flux.csv").exists()), 10)
        await feed.stop()

    asyncio.run(scenario())
    assert day_line(ledger) == "2024-03-15,1,0,0.000,0.0000"


@pytest.fixture
def server(ledger, tmp_path):
    """The node's HTTP server with the feed registered as ``voicebot serve`` does."""
    settings = settings_module.replace(
        ledger_settings_for(tmp_path / "state"),
        ledger={"contacts_token": "s3cret-token", "contacts_dir": tmp_path / "drop"})

    async def health():
        return 200, {"status": "ok"}

    async def metrics():
        return ""

    async def start():
        http = HealthServer("127.0.0.1", 0, health, metrics)
        feed = ContactFeed.for_node(settings, ledger, http)
        await http.start()
        return http, feed

    return start


def test_post_contacts_is_authenticated_idempotent_and_answers_in_french(ledger, server):
    async def scenario():
        http, _feed = await server()
        url = f"http://127.0.0.1:{http.port}/contacts"
        auth = {"Authorization": "Bearer s3cret-token"}
        replies = []
        async with aiohttp.ClientSession() as session:
            async def post(data, headers, content_type="text/csv"):
                async with session.post(url, data=data, headers={
                        "Content-Type": content_type, **headers}) as reply:
                    replies.append((reply.status, json.loads(await reply.text())))

            csv_body = "\n".join([HEADER, BOT]) + "\n"
            await post(csv_body, {})
            await post(csv_body, {"Authorization": "Bearer wrong"})
            await post(csv_body, auth)
            await post(csv_body, auth)  # a retry: nothing changes
            contact = {"call_id": "adv-1", "caller": "+33711223344",
                       "started_at": "2024-03-15T10:00:00+01:00",
                       "ended_at": "2024-03-15T10:10:00+01:00"}
            await post(json.dumps({"contacts": [contact]}), auth, "application/json")
            await post(json.dumps([contact]), auth, "application/json")
            await post(json.dumps([{**contact, "ended_at": "2024-03-15T10:20:00+01:00"}]),
                       auth, "application/json")
            await post(json.dumps([{**contact, "call_id": "adv-9",
                                    "started_at": "demain"}]), auth, "application/json")
            await post("\n".join([HEADER, BAD]), auth)
        await http.stop()
        return replies

    replies = asyncio.run(scenario())
    assert replies[0] == (401, {"error": "Jeton absent ou invalide (Authorization: Bearer …)."})
    assert replies[1][0] == 401
    assert replies[2] == (200, {"rows": 1, "inserted": 1, "unchanged": 0})
    assert replies[3] == (200, {"rows": 1, "inserted": 0, "unchanged": 1})
    assert replies[4] == (200, {"rows": 1, "inserted": 1, "unchanged": 0})
    assert replies[5] == (200, {"rows": 1, "inserted": 0, "unchanged": 1})
    status, body = replies[6]
    assert status == 409 and body["errors"][0]["line"] == 2
    assert body["errors"][0]["message"].startswith(
        "call_id « adv-1 » déjà enregistré dans la base avec d'autres valeurs (ended_at)")
    status, body = replies[7]
    assert status == 400
    assert body["errors"] == [{"line": 2, "message": "started_at « demain » invalide : date et "
                               "heure ISO 8601 avec décalage attendues (ex. "
                               "2024-03-01T10:00:00+01:00)"}]
    assert replies[8][0] == 400 and "sans décalage horaire" in replies[8][1]["errors"][0][
        "message"]
    assert day_line(ledger) == "2024-03-15,1,0,0.000,0.0000"


def test_post_contacts_is_refused_when_no_token_is_configured(ledger, tmp_path):
    async def scenario():
        async def health():
            return 200, {}

        async def metrics():
            return ""

        http = HealthServer("127.0.0.1", 0, health, metrics)
        ContactFeed.for_node(ledger_settings_for(tmp_path / "state"), ledger, http)
        await http.start()
        async with aiohttp.ClientSession() as session, session.post(
                f"http://127.0.0.1:{http.port}/contacts", data="x",
                headers={"Authorization": "Bearer "}) as reply:
            result = reply.status, json.loads(await reply.text())
        await http.stop()
        return result

    assert asyncio.run(scenario()) == (403, {
        "error": "Point d'entrée désactivé : configurez ledger.contacts_token "
                 "(VOICEBOT_LEDGER_CONTACTS_TOKEN)."})
