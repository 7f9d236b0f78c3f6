"""``voicebot users …`` and the password rule (CNIL deliberation 2022-100), argon2id."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from bot.settings import PROJECT_ROOT
from console.passwords import password_problem
from ledger.schema import console_users


def voicebot(settings, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(settings.paths.state_dir))
    env.pop("VOICEBOT_CONFIG", None)
    return subprocess.run([sys.executable, "-m", "bot.cli.main", *args], input=stdin, env=env,
                          capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT)


@pytest.mark.parametrize("password", [
    "Cafe-3230-Lyon",                       # 12+ mixed with special characters
    "Allocations2025Familiales",            # 14+ upper, lower, digits, no special
    "cheval rouge mange pomme verte sous pluie",  # 7-word passphrase
])
def test_strong_passwords_follow_one_of_the_cnil_ways(password):
    assert password_problem(password, "alice") is None


@pytest.mark.parametrize(("password", "why"), [
    ("Court-1!", "8 caractères"),
    ("motdepasse-tres-long!", "une majuscule"),
    ("Allocations25", "un caractère spécial"),  # 13 characters: the 14+ rule does not apply
    ("Alice-2025-Caf!", "nom de l'utilisateur"),
    ("cheval rouge mange pomme", "trop faible"),  # 4 words only
])
def test_weak_passwords_are_refused_in_french(password, why):
    problem = password_problem(password, "alice")
    assert problem is not None and why in problem


def test_users_commands_end_to_end(console_settings, console_ledger):
    weak = voicebot(console_settings, "users", "add", "alice", "--role", "admin",
                    "--password-stdin", stdin="motdepasse\n")
    assert weak.returncode == 2
    assert weak.stderr.startswith("Erreur : Mot de passe trop faible")
    assert "Traceback" not in weak.stderr

    added = voicebot(console_settings, "users", "add", "alice", "--role", "admin",
                     "--password-stdin", stdin="Cafe-3230-Lyon\n")
    assert added.returncode == 0, added.stderr
    with console_ledger.engine.connect() as conn:
        stored = conn.execute(sa.select(console_users.c.password_hash)).scalar()
    assert stored.startswith("$argon2id$") and "Cafe-3230-Lyon" not in stored

    again = voicebot(console_settings, "users", "add", "alice", "--role", "admin",
                     "--password-stdin", stdin="Cafe-3230-Lyon\n")
    assert again.returncode == 2 and "existe déjà" in again.stderr
    bad_role = voicebot(console_settings, "users", "add", "bob", "--role", "chef",
                        "--password-stdin", stdin="Cafe-3230-Lyon\n")
    assert bad_role.returncode == 2 and "Rôle inconnu" in bad_role.stderr
    assert "editeur, superviseur, facturation, auditeur, admin" in bad_role.stderr

    listed = voicebot(console_settings, "users", "list")
    assert listed.returncode == 0
    assert any(line.split()[:3] == ["alice", "admin", "actif"]
               for line in listed.stdout.splitlines())

    disabled = voicebot(console_settings, "users", "disable", "alice")
    assert disabled.returncode == 0
    assert "désactivé" in voicebot(console_settings, "users", "list").stdout
    unknown = voicebot(console_settings, "users", "disable", "zoe")
    assert unknown.returncode == 2 and "Utilisateur inconnu" in unknown.stderr

    weak_reset = voicebot(console_settings, "users", "reset", "alice", "--password-stdin",
                          stdin="alice\n")
    assert weak_reset.returncode == 2 and "Erreur :" in weak_reset.stderr
    reset = voicebot(console_settings, "users", "reset", "alice", "--password-stdin",
                     stdin="Nouveau-Mot-2-Passe\n")
    assert reset.returncode == 0, reset.stderr
    with console_ledger.engine.connect() as conn:
        row = conn.execute(sa.select(console_users)).one()
    assert row.active and row.password_hash != stored

    from console.audit_log import AuditLog

    actions = [(e.action, e.object, e.outcome) for e in
               AuditLog.from_settings(console_settings, console_ledger.engine).entries()]
    assert ("utilisateur_ajout", "alice (admin)", "ok") in actions
    assert ("utilisateur_desactivation", "alice", "ok") in actions
    assert ("utilisateur_mot_de_passe", "alice", "ok") in actions
    assert ("utilisateur_ajout", "alice (admin)", "refuse") in actions


def test_new_password_works_and_the_old_one_no_longer(console_app, make_user, login):
    old = make_user("alice", "admin")
    console_app.app.state.users.reset("alice", "Nouveau-Mot-2-Passe")
    assert login(console_app, "alice", old).status_code == 401
    assert login(console_app, "alice", "Nouveau-Mot-2-Passe").status_code == 303


def test_admin_page_creates_disables_and_resets_users(console_app, make_user, login):
    from console_support import csrf_of

    login(console_app, "root-admin", make_user("root-admin", "admin"))
    page = console_app.get("/admin")
    weak = console_app.post("/admin/utilisateurs", data={
        "name": "marie", "role": "editeur", "password": "court", "csrf_token": csrf_of(page.text)})
    assert weak.status_code == 400 and "Mot de passe trop faible" in weak.text
    created = console_app.post("/admin/utilisateurs", data={
        "name": "marie", "role": "editeur", "password": "Cafe-3230-Lyon",
        "csrf_token": csrf_of(page.text)})
    assert created.status_code == 200 and "« marie » créé" in created.text
    reset = console_app.post("/admin/utilisateurs/marie/mot-de-passe", data={
        "password": "Autre-Mot-2-Passe", "csrf_token": csrf_of(page.text)})
    assert reset.status_code == 200
    disabled = console_app.post("/admin/utilisateurs/marie/desactiver",
                                data={"csrf_token": csrf_of(page.text)})
    assert disabled.status_code == 200 and "désactivé" in disabled.text
    own = console_app.post("/admin/utilisateurs/root-admin/desactiver",
                           data={"csrf_token": csrf_of(page.text)})
    assert own.status_code == 400
    actions = [e.action for e in console_app.app.state.audit.entries(user="root-admin")]
    assert {"utilisateur_ajout", "utilisateur_mot_de_passe",
            "utilisateur_desactivation"} <= set(actions)
