"""``GET /recordings/{call_id}``: the decrypted recording streamed inline, never cached, in
byte ranges as a browser's player asks for them; each request logged; no download link."""

from __future__ import annotations

from datetime import date, time

import pytest
from supervision_data import Call, wav_frames, write_calls

from ledger.recordings import RecordingVault

CALL = Call("rec-1@10.0.0.1", date(2026, 3, 10), time(9, 30), "aide_logement",
            transcript="Appelant : bonjour\nBot : bonjour", recording_s=1.5)
URL = "/recordings/rec-1%4010.0.0.1"


@pytest.fixture
def wav(console_ledger, console_settings) -> bytes:
    write_calls(console_ledger, console_settings.paths.state_dir, [CALL])
    vault = RecordingVault.for_ledger(console_ledger, console_settings.paths.state_dir)
    data = vault.open_wav(CALL.call_id)
    assert data is not None and b"RIFF" not in vault.find(CALL.call_id).read_bytes()
    return data


@pytest.fixture
def supervisor(console_app, make_user, login):
    login(console_app, "sophie", make_user("sophie", "superviseur"))
    return console_app


def plays(client):
    return client.app.state.audit.entries(action="ecoute_enregistrement")


def test_the_whole_recording_is_served_inline_uncached_and_decrypted(wav, supervisor):
    reply = supervisor.get(URL)
    assert reply.status_code == 200
    assert reply.content == wav and wav_frames(reply.content) == (2, 8000, 12_000)
    assert reply.headers["content-type"] == "audio/wav"
    assert reply.headers["content-disposition"] == "inline"
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["accept-ranges"] == "bytes"
    [entry] = plays(supervisor)
    assert entry.user_name == "sophie" and entry.outcome == "ok"
    assert entry.object == f"appel {CALL.call_id} (octets 0-{len(wav) - 1}/{len(wav)})"


@pytest.mark.parametrize(("header", "start", "end"), [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-", 1000, None),
    ("bytes=-44", None, None),
    ("bytes=40000-999999", 40000, None),
    ("bytes=10-19, 30-39", 10, 19),
])
def test_a_range_is_answered_with_206_and_its_content_range(wav, supervisor, header, start,
                                                            end):
    size = len(wav)
    if start is None:  # suffix: the last 44 bytes
        start = size - 44
    end = size - 1 if end is None else end
    reply = supervisor.get(URL, headers={"Range": header})
    assert reply.status_code == 206
    assert reply.content == wav[start:end + 1]
    assert reply.headers["content-range"] == f"bytes {start}-{end}/{size}"
    assert reply.headers["content-length"] == str(end - start + 1)
    assert reply.headers["cache-control"] == "no-store"
    assert reply.headers["content-disposition"] == "inline"
    [entry] = plays(supervisor)
    assert entry.object.endswith(f"(octets {start}-{end}/{size})")


def test_a_range_past_the_end_is_refused_with_416(wav, supervisor):
    reply = supervisor.get(URL, headers={"Range": f"bytes={len(wav)}-"})
    assert reply.status_code == 416
    assert reply.headers["content-range"] == f"bytes */{len(wav)}"
    assert plays(supervisor)[0].outcome == "plage_invalide"


def test_an_unknown_call_is_404_in_french_and_logged(wav, supervisor):
    reply = supervisor.get("/recordings/no-such-call")
    assert reply.status_code == 404 and "Aucun enregistrement" in reply.text
    assert plays(supervisor)[0].outcome == "introuvable"


def test_the_player_page_has_no_download_link(wav, supervisor):
    page = supervisor.get(URL.replace("/recordings/", "/enregistrements/")).text
    assert '<audio controls controlsList="nodownload' in page
    assert f'src="{URL}"' in page
    assert "download" not in page.replace('controlsList="nodownload', "")
    assert f'href="{URL}"' not in page
    assert not plays(supervisor)  # showing the player sends no audio: nothing to log yet


def test_recordings_are_refused_to_every_other_role(wav, console_app, make_user, login):
    assert console_app.get(URL, follow_redirects=False).status_code == 303
    for role in ("editeur", "facturation", "auditeur", "admin"):
        console_app.cookies.clear()
        login(console_app, f"user-{role}", make_user(f"user-{role}", role))
        reply = console_app.get(URL, headers={"Range": "bytes=0-99"})
        assert reply.status_code == 403 and b"RIFF" not in reply.content, role
    assert not plays(console_app)
