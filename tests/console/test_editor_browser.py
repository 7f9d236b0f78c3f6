"""An editor in a real browser (chromium through Playwright) on a real ``voicebot console``:
edit an answer, see the French error for a too-long answer beside the field, fix it,
publish, and ``voicebot ask`` (the real CLI, same state directory) says the new wording."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from console_support import browser_login, start_console
from editor_kb import ENTRY, QUESTION, TOO_LONG_ANSWER, clone, publish_copy

from bot.settings import PROJECT_ROOT

ASK_TIMEOUT_S = 600  # loading the Rasa model on a busy machine


@pytest.fixture(scope="module")
def published_template(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("editor-browser-template")
    publish_copy(root)
    return root


@pytest.fixture
def console_settings(published_template: Path, tmp_path: Path):
    return clone(published_template, tmp_path / "copy")


@pytest.fixture
def console_server(console_settings):
    """Overrides conftest's: the served console edits the private copy of knowledge/."""
    server = start_console(console_settings, extra_env={
        "VOICEBOT_PATHS_KNOWLEDGE_DIR": str(console_settings.paths.knowledge_dir)})
    try:
        yield server
    finally:
        server.stop()


def ask(server, question: str) -> dict:
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "ask"], env=server.env,
                          input=question + "\n", capture_output=True, text=True,
                          timeout=ASK_TIMEOUT_S, cwd=PROJECT_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[0])


def test_editor_fixes_a_too_long_answer_publishes_and_the_bot_says_it(
        page, console_server, console_settings, tmp_path):
    from tts.speaker import Speaker

    password = console_server.add_user("edith", "editeur")
    browser_login(page, "edith", password)
    shots = Path(os.environ.get("ALLO_CAF_SCREENSHOTS", tmp_path))

    page.goto("/editeur")
    page.get_by_label("Mots").fill("mot de passe")
    page.get_by_role("button", name="Chercher").click()
    page.screenshot(path=str(shots / "editeur-fiches.png"), full_page=True)
    page.get_by_role("link", name=ENTRY, exact=True).click()
    assert page.locator("audio").count() == 1  # the published answer, playable in the page

    answer = page.get_by_label("Réponse", exact=True)
    answer.fill(TOO_LONG_ANSWER)
    page.get_by_label("Commentaire de publication").fill("réponse simplifiée")
    page.get_by_role("button", name="Publier", exact=True).click()
    error = page.locator(".field-error", has_text="la réponse dure environ")
    assert error.count() == 1
    assert error.get_attribute("id") in answer.get_attribute("aria-describedby").split()
    assert answer.get_attribute("aria-invalid") == "true"
    page.screenshot(path=str(shots / "editeur-fiche-erreur.png"), full_page=True)

    new_wording = ("Pour un nouveau mot de passe, allez sur caf point fr, page de connexion, "
                   "puis cliquez sur mot de passe oublié.")
    answer.fill(new_wording)
    page.get_by_role("button", name="Écouter la réponse").click()
    assert "non publiée" in page.locator(".listen").inner_text()
    page.get_by_label("Commentaire de publication").fill("réponse simplifiée")
    page.get_by_role("button", name="Publier", exact=True).click()
    assert "la nouvelle version est en ligne" in page.get_by_role("status").first.inner_text()
    assert page.locator(".field-error").count() == 0
    page.screenshot(path=str(shots / "editeur-fiche-publiee.png"), full_page=True)

    page.get_by_role("link", name="Historique de la fiche").click()
    assert "réponse simplifiée" in page.locator("main").inner_text()
    page.screenshot(path=str(shots / "editeur-historique.png"), full_page=True)

    reply = ask(console_server, QUESTION)
    assert reply["action"] == "answer"
    assert reply["reply"].startswith(new_wording)  # then « autre question ? »
    assert Speaker.load(console_settings).cached(new_wording) is not None  # audio made


def test_editor_adds_a_misunderstood_phrasing_to_an_entry(page, console_server,
                                                          console_settings, tmp_path):
    from bot.kb.store import KbStore
    from ledger.api import Ledger
    from ledger.records import Interaction

    clarify = KbStore(console_settings.paths.state_dir).current().kb.messages["clarify"]
    ledger = Ledger.open(console_settings, require_database=True, replay_spool=False)
    ended = datetime.now(timezone.utc) - timedelta(minutes=5)
    for number, said in enumerate(("je retrouve plus mon code secret du site",
                                   "j'ai perdu mon code secret pour le site", "zkrv blorf")):
        ledger.record_interaction(Interaction(
            call_id=f"b{number}", caller_number="+33612345678", ended_at=ended,
            started_at=ended - timedelta(minutes=1), motif="conseiller", message_ms=0,
            listened_ms=0, handoff=True, transcript=f"Appelant : {said}\nBot : {clarify}"))
    ledger.close()
    password = console_server.add_user("edith", "editeur")
    browser_login(page, "edith", password)
    shots = Path(os.environ.get("ALLO_CAF_SCREENSHOTS", tmp_path))

    page.goto("/editeur/incomprises")
    groups = page.locator("section.group")
    assert groups.count() == 2
    first = groups.first
    assert "2 fois, 2 appel(s)" in first.locator("h3").inner_text()
    page.screenshot(path=str(shots / "editeur-incomprises.png"), full_page=True)
    first.get_by_label("j'ai perdu mon code secret pour le site").check()
    first.get_by_label("Ajouter aux questions de la fiche").select_option(ENTRY)
    first.get_by_role("button", name="Ouvrir la fiche avec cette formulation").click()
    questions = page.get_by_label("Questions (une par ligne)").input_value().splitlines()
    assert questions[-1] == "j'ai perdu mon code secret pour le site"
