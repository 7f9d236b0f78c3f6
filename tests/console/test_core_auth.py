"""Login, lockout, sessions, CSRF, security headers and role checks, over HTTP."""

from __future__ import annotations

import re
import time

import pytest
import sqlalchemy as sa
from console_support import csrf_of, login

from console.roles import ADMIN, AUDITEUR, EDITEUR, FACTURATION, ROLES, SUPERVISEUR
from console.security import SESSION_COOKIE
from ledger.schema import console_login_failures, console_sessions

SECURITY_HEADERS = ("content-security-policy", "strict-transport-security",
                    "x-content-type-options", "referrer-policy")


def _cookie_attributes(response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie set: {response.headers.get_list('set-cookie')}")


def test_login_form_has_the_three_fields(console_app):
    page = console_app.get("/login")
    assert page.status_code == 200
    names = set(re.findall(r'<input[^>]*name="([^"]+)"', page.text))
    assert {"username", "password", "csrf_token"} <= names
    assert '<label for="username">' in page.text and '<label for="password">' in page.text
    assert 'lang="fr"' in page.text


def test_login_opens_a_secure_session_and_the_home_page(console_app, make_user):
    password = make_user("claire", SUPERVISEUR)
    answer = login(console_app, "claire", password)
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    cookie = _cookie_attributes(answer, SESSION_COOKIE)
    for attribute in ("Secure", "HttpOnly", "SameSite=Strict", "Path=/"):
        assert attribute in cookie
    home = console_app.get("/")
    assert home.status_code == 200
    assert "Bonjour claire" in home.text and "Se déconnecter" in home.text


def test_wrong_password_is_refused_in_french_without_session(console_app, make_user):
    make_user("claire", SUPERVISEUR)
    answer = login(console_app, "claire", "Mauvais-mot-2-passe!")
    assert answer.status_code == 401
    assert "Identifiant ou mot de passe incorrect." in answer.text
    assert not any(h.startswith(SESSION_COOKIE) for h in answer.headers.get_list("set-cookie"))
    assert console_app.get("/", follow_redirects=False).headers["location"] == "/login"


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(console_app, make_user):
    make_user("claire", SUPERVISEUR)
    known = login(console_app, "claire", "Mauvais-mot-2-passe!")
    unknown = login(console_app, "personne", "Mauvais-mot-2-passe!")
    assert (known.status_code, unknown.status_code) == (401, 401)
    message = re.compile(r'role="alert"[^>]*>([^<]+)<')
    assert message.search(known.text).group(1) == message.search(unknown.text).group(1)


def test_five_failures_lock_the_account_even_with_the_right_password(console_app, make_user,
                                                                      console_ledger):
    password = make_user("paul", FACTURATION)
    for _ in range(4):
        assert login(console_app, "paul", "Pas-le-bon-2025!").status_code == 401
    fifth = login(console_app, "paul", "Pas-le-bon-2025!")
    assert fifth.status_code == 429 and "bloqué" in fifth.text
    refused = login(console_app, "paul", password)
    assert refused.status_code == 429
    assert "même avec le bon mot de passe" in refused.text
    assert console_app.get("/", follow_redirects=False).status_code == 303
    with console_ledger.engine.begin() as conn:
        row = conn.execute(sa.select(console_login_failures)
                           .where(console_login_failures.c.name == "paul")).one()
        assert row.locked_until_ms - row.last_failure_ms >= 60_000
        # A minute later (the wait moved into the past), the right password works again.
        conn.execute(console_login_failures.update().values(
            locked_until_ms=int(time.time() * 1000) - 1))
    assert login(console_app, "paul", password).status_code == 303
    assert console_app.get("/").status_code == 200


def test_unknown_names_lock_like_real_ones(console_app):
    for _ in range(5):
        last = login(console_app, "inconnu", "Pas-le-bon-2025!")
    assert last.status_code == 429


def test_a_success_resets_the_failure_count(console_app, make_user):
    password = make_user("paul", FACTURATION)
    for _ in range(4):
        login(console_app, "paul", "Pas-le-bon-2025!")
    assert login(console_app, "paul", password).status_code == 303
    console_app.post("/logout", data={"csrf_token": csrf_of(console_app.get("/").text)})
    for _ in range(4):
        assert login(console_app, "paul", "Pas-le-bon-2025!").status_code == 401


def test_session_ends_after_thirty_idle_minutes(console_app, make_user, console_ledger):
    password = make_user("claire", SUPERVISEUR)
    login(console_app, "claire", password)

    def idle(minutes: float) -> None:
        with console_ledger.engine.begin() as conn:
            conn.execute(console_sessions.update().values(
                last_seen_ms=int(time.time() * 1000) - int(minutes * 60_000)))

    idle(29)
    assert console_app.get("/").status_code == 200
    idle(31)
    answer = console_app.get("/", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert "session a expiré" in console_app.get("/login").text


def test_logout_ends_the_session_on_the_server(console_app, make_user, console_ledger):
    password = make_user("claire", SUPERVISEUR)
    login(console_app, "claire", password)
    token = console_app.cookies.get(SESSION_COOKIE)
    answer = console_app.post("/logout", data={"csrf_token": csrf_of(console_app.get("/").text)},
                              follow_redirects=False)
    assert answer.status_code == 303
    assert "Max-Age=0" in _cookie_attributes(answer, SESSION_COOKIE)
    with console_ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(console_sessions)).scalar() \
            == 0
    console_app.cookies.set(SESSION_COOKIE, token, domain="testserver")  # replay the old cookie
    assert console_app.get("/", follow_redirects=False).status_code == 303


def test_forms_without_the_csrf_token_are_refused(console_app, make_user):
    password = make_user("alice", ADMIN)
    no_token = console_app.post("/login", data={"username": "alice", "password": password})
    assert no_token.status_code == 403 and "formulaire" in no_token.text.lower()
    forged = console_app.post("/login", data={"username": "alice", "password": password,
                                              "csrf_token": "0" * 64})
    assert forged.status_code == 403
    login(console_app, "alice", password)
    created = console_app.post("/admin/utilisateurs", data={
        "name": "mallory", "role": ADMIN, "password": "Aa1!Aa1!Aa1!Aa1!"})
    assert created.status_code == 403
    assert "mallory" not in console_app.get("/admin").text


@pytest.mark.parametrize("path", ["/login", "/", "/introuvable", "/static/console.css",
                                  "/admin"])
def test_security_headers_on_every_response(console_app, path):
    answer = console_app.get(path, follow_redirects=False)
    for header in SECURITY_HEADERS:
        assert header in answer.headers, (path, header)
    csp = answer.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "max-age=" in answer.headers["strict-transport-security"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    if not path.startswith("/static/"):
        assert answer.headers["cache-control"] == "no-store"


def test_login_does_not_redirect_to_another_site(console_app, make_user):
    password = make_user("claire", SUPERVISEUR)
    form = console_app.get("/login?suite=//evil.example/x")
    answer = console_app.post("/login", data={"username": "claire", "password": password,
                                              "csrf_token": csrf_of(form.text),
                                              "suite": "//evil.example/x"},
                              follow_redirects=False)
    assert answer.headers["location"] == "/"


def test_login_returns_to_the_page_asked_for(console_app, make_user):
    password = make_user("alice", ADMIN)
    asked = console_app.get("/admin", follow_redirects=False)
    assert asked.headers["location"].startswith("/login?suite=")
    form = console_app.get(asked.headers["location"])
    answer = console_app.post("/login", data={"username": "alice", "password": password,
                                              "csrf_token": csrf_of(form.text),
                                              "suite": "/admin"}, follow_redirects=False)
    assert answer.headers["location"] == "/admin"


def test_each_role_opens_only_its_pages(console_app, make_user):
    """Every page in the navigation, for every role: its roles get it, the others a 403."""
    nav = console_app.app.state.nav
    assert {item.path for item in nav} >= {"/admin", "/audit"}
    for role in ROLES:
        password = make_user(f"u-{role}", role)
        console_app.cookies.clear()
        login(console_app, f"u-{role}", password)
        home = console_app.get("/")
        for item in nav:
            answer = console_app.get(item.path, follow_redirects=False)
            if role in item.roles:
                assert answer.status_code == 200, (role, item.path)
                assert f'href="{item.path}"' in home.text
            else:
                assert answer.status_code == 403, (role, item.path)
                assert "Accès refusé" in answer.text
                assert f'href="{item.path}"' not in home.text


def test_refusals_are_in_the_access_log(console_app, make_user):
    password = make_user("eve", EDITEUR)
    login(console_app, "eve", password)
    assert console_app.get("/audit").status_code == 403
    entries = console_app.app.state.audit.entries(user="eve")
    assert [(e.action, e.outcome) for e in entries][-1] == ("acces_refuse", "refuse")
    assert entries[-1].object == "GET /audit" and entries[-1].source


def test_disabled_user_is_logged_out_and_cannot_log_in(console_app, make_user):
    make_user("alice", ADMIN)
    bob_password = make_user("bob", AUDITEUR)
    bob = console_app.app.state.users
    login(console_app, "bob", bob_password)
    assert console_app.get("/audit").status_code == 200
    bob.disable("bob")
    assert console_app.get("/audit", follow_redirects=False).status_code == 303
    answer = login(console_app, "bob", bob_password)
    assert answer.status_code == 403 and "désactivé" in answer.text
