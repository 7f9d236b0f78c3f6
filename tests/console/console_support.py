"""Fixtures and helpers of the console tests: the app on a temporary ledger, users, a real
HTTPS server and a real browser. ``conftest.py`` registers the fixtures; tests import the
helpers from here, never from ``conftest`` (a name every test folder has).

- ``console_settings``: Settings on a fresh state directory (SQLite ledger inside it).
- ``console_app``: a ``TestClient`` (https://testserver, so Secure cookies travel).
- ``make_user(name, role)``: creates the user, returns its password.
- ``login(client, name, password)``: posts the login form with its CSRF token.
- ``console_server``: a real ``voicebot console`` subprocess over HTTPS on a free port.
- ``page``: a Playwright page in the system chromium (certificate errors ignored: the
  console's certificate is self-signed); ``browser_login(page, name, password)``.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from processes import stop_process

from bot import settings as settings_module
from bot.settings import PROJECT_ROOT, Settings

CHROMIUM = "/usr/bin/chromium"
SERVER_START_S = 60.0
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_settings_for(state_dir: Path, **sections: dict) -> Settings:
    base = settings_module.load(env={})
    paths = {"state_dir": state_dir, "generated_dir": state_dir / "generated",
             **sections.pop("paths", {})}
    return settings_module.replace(base, paths=paths, **sections)


@pytest.fixture
def console_settings(tmp_path: Path) -> Settings:
    return console_settings_for(tmp_path / "state")


@pytest.fixture
def console_ledger(console_settings: Settings):
    from ledger.api import Ledger

    ledger = Ledger.open(console_settings, require_database=True, replay_spool=False)
    yield ledger
    ledger.close()


@pytest.fixture
def console_app(console_settings: Settings, console_ledger) -> Iterator[TestClient]:
    from console.app import create_app

    app = create_app(console_settings, console_ledger)
    with TestClient(app, base_url="https://testserver") as client:
        yield client


def new_password() -> str:
    """A password the CNIL rule accepts (upper, lower, digit, special, 12+ characters)."""
    return f"Aa1!{secrets.token_urlsafe(12)}"


@pytest.fixture
def make_user(console_settings: Settings, console_ledger) -> Callable[[str, str], str]:
    from console.users import UserStore

    store = UserStore(console_ledger.engine, console_settings.console)

    def make(name: str, role: str) -> str:
        password = new_password()
        store.add(name, role, password)
        return password

    return make


def csrf_of(html: str) -> str:
    match = CSRF_FIELD.search(html)
    assert match, "no csrf_token field in the page"
    return match.group(1)


def login(client: TestClient, name: str, password: str, follow_redirects: bool = False):
    """Post the login form as a browser would (GET the form, then POST it with its token)."""
    form = client.get("/login")
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": csrf_of(form.text)},
                       follow_redirects=follow_redirects)


@pytest.fixture(name="login")
def login_fixture() -> Callable:
    return login


# --- a real server and a real browser -----------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class ConsoleServer:
    process: subprocess.Popen
    url: str
    port: int
    settings: Settings
    env: dict[str, str]
    log: list[str] = field(default_factory=list)

    def voicebot(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        """Run a ``voicebot`` command on the server's settings (same database, same state)."""
        return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=120,
                              cwd=PROJECT_ROOT)

    def add_user(self, name: str, role: str) -> str:
        password = new_password()
        done = self.voicebot("users", "add", name, "--role", role, "--password-stdin",
                             stdin=password + "\n")
        assert done.returncode == 0, done.stderr
        return password

    def stop(self) -> None:
        stop_process(self.process, 20)


def start_console(settings: Settings, extra_env: dict[str, str] | None = None) -> ConsoleServer:
    port = free_port()
    env = dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(settings.paths.state_dir),
               VOICEBOT_PATHS_GENERATED_DIR=str(settings.paths.generated_dir),
               VOICEBOT_CONSOLE_PORT=str(port), VOICEBOT_CONSOLE_HOST="127.0.0.1",
               **(extra_env or {}))
    env.pop("VOICEBOT_CONFIG", None)
    process = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "console"], env=env,
                               cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    server = ConsoleServer(process, f"https://127.0.0.1:{port}", port, settings, env)
    listening = threading.Event()

    def read_log() -> None:
        for line in process.stdout:  # type: ignore[union-attr]
            server.log.append(line.rstrip())
            if line.startswith("Console : https://"):
                listening.set()
        listening.set()  # exited: the wait below ends and reports it

    threading.Thread(target=read_log, daemon=True).start()
    if not listening.wait(SERVER_START_S) or process.poll() is not None:
        server.stop()
        raise AssertionError("voicebot console did not start:\n" + "\n".join(server.log))
    return server


@pytest.fixture
def console_server(console_settings: Settings) -> Iterator[ConsoleServer]:
    server = start_console(console_settings)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    """One chromium per module: Playwright's sync API holds an event loop on this thread
    while it runs, which the asyncio tests of other folders must not find there."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console_server: ConsoleServer):
    context = browser.new_context(ignore_https_errors=True, base_url=console_server.url,
                                  locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def browser_login(page, name: str, password: str) -> None:
    """Fill and send the login form in the browser (does not check the outcome); stays on the
    login page when already there (keeps the page asked for before logging in)."""
    if "/login" not in page.url:
        page.goto("/login")
    page.get_by_label("Identifiant").fill(name)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_load_state()


@pytest.fixture(name="browser_login")
def browser_login_fixture() -> Callable:
    return browser_login
