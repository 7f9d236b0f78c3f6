"""The console in a real browser (Debian's chromium driven by Playwright) against a real
``voicebot console`` over HTTPS: log in, wrong password, lockout, each role refused what it
may not see, a changed access-log row caught by ``voicebot audit verify``.

With ``CONSOLE_SCREENSHOTS=docs/console`` the tests also save screenshots of the pages.
"""

from __future__ import annotations

import os
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from console_support import browser_login

from console.roles import ROLES
from ledger.schema import console_audit_log

SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")


def shot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def test_log_in_and_out(page, console_server):
    password = console_server.add_user("alice", "admin")
    page.goto("/admin")
    assert page.url.endswith("/login?suite=%2Fadmin")
    shot(page, "connexion")
    browser_login(page, "alice", password)
    assert page.url.endswith("/admin")
    assert page.get_by_role("heading", name="Utilisateurs").is_visible()
    shot(page, "utilisateurs")
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-allo_session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.get_by_role("button", name="Se déconnecter").click()
    assert "Vous êtes déconnecté." in page.content()
    page.goto("/admin")
    assert "/login" in page.url


def test_wrong_password_shows_a_french_error(page, console_server):
    console_server.add_user("alice", "admin")
    browser_login(page, "alice", "Mauvais-Mot-2-Passe!")
    assert page.get_by_role("alert").inner_text() == "Identifiant ou mot de passe incorrect."
    assert "/login" in page.url
    shot(page, "connexion-erreur")


def test_lockout_after_five_failures_even_with_the_right_password(page, console_server):
    password = console_server.add_user("paul", "facturation")
    for _ in range(5):
        browser_login(page, "paul", "Mauvais-Mot-2-Passe!")
    browser_login(page, "paul", password)
    alert = page.get_by_role("alert").inner_text()
    assert "bloqué" in alert and "même avec le bon mot de passe" in alert
    page.goto("/")
    assert "/login" in page.url
    shot(page, "connexion-bloquee")


def test_each_role_is_refused_what_it_may_not_see(page, console_server):
    from console.app import create_app

    app = create_app(console_server.settings)
    nav = list(app.state.nav)
    app.state.ledger.close()
    assert {item.path for item in nav} >= {"/admin", "/audit"}
    passwords = {role: console_server.add_user(f"u-{role}", role) for role in ROLES}
    for role in ROLES:
        page.context.clear_cookies()
        browser_login(page, f"u-{role}", passwords[role])
        assert page.get_by_role("heading", name=f"Bonjour u-{role}").is_visible()
        links = page.get_by_role("navigation", name="Navigation principale")
        shown = set(links.get_by_role("link").all_inner_texts())
        if role == "superviseur":
            shot(page, "accueil-superviseur")
        for item in nav:
            reply = page.goto(item.path)
            if role in item.roles:
                assert reply.status == 200, (role, item.path)
                assert item.label in shown
            else:
                assert reply.status == 403, (role, item.path)
                assert page.get_by_role("heading", name="Accès refusé").is_visible()
                assert item.label not in shown
        if role == "editeur":
            page.goto("/audit")
            shot(page, "acces-refuse")


def test_a_changed_log_row_makes_audit_verify_fail(page, console_server):
    password = console_server.add_user("olga", "auditeur")
    browser_login(page, "olga", password)
    page.goto("/audit")
    assert page.get_by_role("heading", name="Journal des accès").is_visible()
    assert page.get_by_role("cell", name="utilisateur_ajout").count() >= 1
    shot(page, "journal")
    page.get_by_role("link", name="Vérifier la chaîne").click()
    assert "Chaîne intacte" in page.content()
    assert console_server.voicebot("audit", "verify").returncode == 0

    from ledger.api import Ledger

    ledger = Ledger.open(console_server.settings, require_database=True, replay_spool=False)
    try:
        with ledger.engine.begin() as conn:
            conn.execute(console_audit_log.update().where(console_audit_log.c.seq == 2)
                         .values(user_name="quelqu'un d'autre"))
    finally:
        ledger.close()
    verify = console_server.voicebot("audit", "verify")
    assert verify.returncode == 1
    assert verify.stderr.startswith("Journal des accès altéré : l'entrée n° 2")
    page.reload()
    assert "Journal des accès altéré" in page.get_by_role("alert").inner_text()
    shot(page, "journal-altere")


def test_tablet_width_keeps_the_navigation_usable(page, console_server):
    password = console_server.add_user("olga", "auditeur")
    page.set_viewport_size({"width": 820, "height": 1180})
    browser_login(page, "olga", password)
    page.goto("/audit")
    nav = page.get_by_role("navigation", name="Navigation principale")
    assert nav.is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 820
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    shot(page, "journal-tablette")


def test_https_only_tls12_minimum_and_security_headers(console_server):
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname, old.verify_mode = False, ssl.CERT_NONE
    old.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    with pytest.raises((ssl.SSLError, ConnectionError)), \
            socket.create_connection(("127.0.0.1", console_server.port), 10) as raw, \
            old.wrap_socket(raw):
        pass
    context = ssl.create_default_context(cafile=str(console_server.settings.paths.state_dir
                                                    / "console" / "tls" / "cert.pem"))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPSHandler(context=context))
    with opener.open(f"{console_server.url}/login", timeout=10) as reply:
        assert reply.status == 200
        assert "max-age=" in reply.headers["Strict-Transport-Security"]
        assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
    plain = socket.create_connection(("127.0.0.1", console_server.port), 10)
    plain.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"csrf_token" not in plain.recv(4096)  # no page over plain HTTP
    plain.close()


def test_role_check_is_on_the_server(console_server):
    """A request without the browser (no session) gets no page, whatever it asks for."""
    context = ssl.create_default_context(cafile=str(console_server.settings.paths.state_dir
                                                    / "console" / "tls" / "cert.pem"))
    for path in ("/admin", "/audit", "/audit/export.csv?du=2025-01-01&au=2025-12-31"):
        request = urllib.request.Request(f"{console_server.url}{path}")
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=context),
                                             _NoRedirect())
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(request, timeout=10)
        assert refused.value.code == 303 and "/login" in refused.value.headers["Location"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return None


