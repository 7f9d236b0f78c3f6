"""In a real browser (Debian's chromium through Playwright) against a real ``voicebot console``:
a supervisor plays a call's recording in the page, then an auditor finds that play in the
access log."""

from __future__ import annotations

from datetime import date, time

import pytest
from supervision_data import Call, write_calls

from ledger.api import Ledger

CALL = Call("browser-call-1", date(2026, 3, 10), time(9, 30), "aide_logement",
            transcript="Appelant : quand est versée mon aide au logement ?\n"
                       "Bot : Votre aide au logement est versée le 5 du mois.",
            recording_s=2.0)


@pytest.fixture
def recorded_call(console_settings):
    ledger = Ledger.open(console_settings, require_database=True, replay_spool=False)
    try:
        write_calls(ledger, console_settings.paths.state_dir, [CALL])
    finally:
        ledger.close()


def test_a_supervisor_plays_a_recording_and_the_auditor_finds_the_play_in_the_log(
        recorded_call, console_server, page, browser_login):
    supervisor = console_server.add_user("sophie", "superviseur")
    auditor = console_server.add_user("audrey", "auditeur")

    browser_login(page, "sophie", supervisor)
    page.goto(f"/supervision/appels/{CALL.call_id}")
    assert "Votre aide au logement est versée le 5 du mois." in page.content()
    audio = page.locator("audio")
    assert "nodownload" in audio.get_attribute("controlslist")
    assert page.locator("a[download], a[href^='/recordings/']").count() == 0
    audio.click()  # the listener's gesture, which the browser's autoplay policy asks for
    audio.evaluate("a => a.play()")
    played = audio.evaluate(  # the page's CSP forbids eval: no wait_for_function
        "a => new Promise(done => { const poll = () => a.currentTime > 0.5 ? "
        "done(a.currentTime) : setTimeout(poll, 50); poll(); })")
    assert played > 0.5
    duration = audio.evaluate("a => a.duration")
    assert abs(duration - CALL.recording_s) < 0.05  # the decrypted WAV, decoded by chromium

    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_load_state()
    browser_login(page, "audrey", auditor)
    page.goto("/audit")
    page.get_by_label("Action").select_option("ecoute_enregistrement")
    page.get_by_role("button", name="Filtrer").click()
    page.wait_for_load_state()
    rows = page.get_by_role("row").filter(has_text=f"appel {CALL.call_id} (octets 0-")
    assert rows.count() >= 1
    first = rows.first.inner_text()
    assert "sophie" in first and "superviseur" in first and "127.0.0.1" in first
    assert "ok" in first
