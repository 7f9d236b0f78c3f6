"""One set of ledger keys per deployment: kept outside var/, checked, rotated (sealing only)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa
from ledger_builders import DATA, interaction, ledger_settings_for

from bot.cli.main import main
from ledger import Ledger, RecordResult
from ledger.keys import KeyMismatchError
from ledger.schema import interactions

MARCH = DATA / "march_2024.csv"


class Host:
    """One host of the deployment: its own voicebot.yml, state dir and keys dir."""

    def __init__(self, root: Path, db: Path, capsys: pytest.CaptureFixture):
        self.root, self.capsys = root, capsys
        self.state_dir, self.keys_dir = root / "var", root / "etc-keys"
        self.config = root / "voicebot.yml"
        root.mkdir(parents=True)
        self.config.write_text(
            f"paths:\n  state_dir: {self.state_dir}\n"
            f"ledger:\n  keys_dir: {self.keys_dir}\n  db_url: sqlite:///{db}\n",
            encoding="utf-8")

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main(["--config", str(self.config), *map(str, argv)])
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def hosts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    for name in list(os.environ):
        if name.startswith("VOICEBOT_"):
            monkeypatch.delenv(name)
    db = tmp_path / "shared.sqlite"
    return Host(tmp_path / "a", db, capsys), Host(tmp_path / "b", db, capsys)


def count_rows(db: Path) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(interactions)).scalar()
    finally:
        engine.dispose()


def test_keys_live_outside_the_state_directory(hosts):
    a, _ = hosts
    code, out, _ = a.run("keys", "init")
    assert code == 0
    assert out.splitlines()[0] == \
        f"Clé de pseudonymisation : créée dans {a.keys_dir / 'pseudonym.key'} (mode 0600)."
    for name in ("pseudonym.key", "transcript.key"):
        assert stat.S_IMODE((a.keys_dir / name).stat().st_mode) == 0o600
    assert a.run("keys", "init")[1].splitlines()[0] == \
        f"Clé de pseudonymisation : déjà présente dans {a.keys_dir / 'pseudonym.key'}, conservée."
    assert a.run("ledger", "import", MARCH)[0] == 0
    var_files = [p.name for p in a.state_dir.rglob("*") if p.is_file()]
    assert not any(name.endswith(".key") for name in var_files), var_files


def test_a_host_with_other_keys_refuses_to_write_and_says_how_to_install_them(hosts, tmp_path):
    a, b = hosts
    db = tmp_path / "shared.sqlite"
    assert a.run("ledger", "import", MARCH)[0] == 0
    rows = count_rows(db)
    b.run("keys", "init")  # b made its own keys: another deployment's, for this ledger
    code, out, err = b.run("ledger", "import", DATA / "march_2024.csv")
    assert (code, out) == (2, "")
    assert err.startswith("Erreur : La clé de pseudonymisation de ce processus (empreinte ")
    assert "Rien n'a été écrit. Installez les clés du déploiement : copiez pseudonym.key et " \
           f"transcript.key depuis un hôte qui écrit déjà dans ce registre vers {b.keys_dir}" in err
    assert err.count("\n") == 1
    assert count_rows(db) == rows
    code, out, err = b.run("keys", "fingerprint")
    assert code == 2 and "n'est pas celle du registre" in err
    # Installed as the message says: b now writes, and links the same callers as a.
    for name in ("pseudonym.key", "transcript.key"):
        shutil.copy(a.keys_dir / name, b.keys_dir / name)
    assert b.run("ledger", "import", MARCH)[1].endswith("19 déjà présente(s) à l'identique.\n")
    code, out, _ = b.run("keys", "fingerprint")
    assert code == 0 and out.endswith("Les clés de ce processus sont celles du registre.\n")


def test_the_voice_service_refuses_to_start_with_another_key(tmp_path):
    """``voicebot serve`` opens the ledger this way before starting anything."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    first = Ledger.open(ledger_settings_for(tmp_path / "a", pseudonym_key="a" * 32), url)
    assert first.record_interaction(interaction("c1")) is RecordResult.STORED
    first.close()
    with pytest.raises(KeyMismatchError) as caught:
        Ledger.open(ledger_settings_for(tmp_path / "b", pseudonym_key="b" * 32), url)
    assert "VOICEBOT_LEDGER_PSEUDONYM_KEY" in str(caught.value)


def test_a_call_spooled_under_another_key_is_never_linked(tmp_path):
    """A node that started while the database was down, with the wrong key: its calls are
    kept, and set aside at replay instead of being stored under foreign pseudonyms."""
    url = f"sqlite:///{tmp_path / 'shared.sqlite'}"
    right = Ledger.open(ledger_settings_for(tmp_path / "a", pseudonym_key="a" * 32), url)
    right.record_interaction(interaction("c1"))
    # Fault injected: the node starts while its database refuses connections (nothing
    # listens on port 1), then the database is back (the shared file's engine).
    wrong = Ledger.open(ledger_settings_for(tmp_path / "b", pseudonym_key="b" * 32),
                        "postgresql://allo@127.0.0.1:1/ledger")
    wrong.url, wrong.engine = url, right.engine
    wrong.spool = right.spool  # one node: one spool directory
    assert wrong.record_interaction(interaction("c2")) is RecordResult.SPOOLED
    result = right.replay_spool()
    assert (result.inserted, right.spool.has_pending()) == (0, False)
    assert "c2" in (right.spool.directory / "wrong-key.jsonl").read_text()
    right.close()


def test_rotation_adds_a_sealing_key_and_old_transcripts_stay_readable(hosts):
    a, _ = hosts
    a.run("keys", "init")
    settings_a = _settings(a)
    ledger = Ledger.open(settings_a)
    ledger.record_interaction(interaction("old", transcript="avant la rotation"))
    old_id = ledger.cipher.key_id
    ledger.close()
    code, out, _ = a.run("keys", "rotate")
    assert code == 0 and out.startswith("Nouvelle clé de scellement ")
    new_id = out.split()[4]
    assert new_id != old_id
    ledger = Ledger.open(settings_a)
    assert ledger.cipher.key_id == new_id and ledger.cipher.key_ids == [old_id, new_id]
    ledger.record_interaction(interaction("new", start="2024-03-01 11:00",
                                          transcript="après la rotation"))
    ledger.close()
    assert a.run("ledger", "transcript", "old")[1] == "avant la rotation\n"
    assert a.run("ledger", "transcript", "new")[1] == "après la rotation\n"
    lines = a.run("keys", "fingerprint")[1].splitlines()
    assert lines[1] == f"Clé de scellement : {old_id} (ouvre seulement ; " \
                       f"{a.keys_dir / 'transcript.key'})"
    assert lines[2].startswith(f"Clé de scellement : {new_id} (scelle ;")


@pytest.mark.parametrize("argv", [("rotate", "pseudonym"), ("rotate", "--pseudonym")])
def test_the_pseudonym_key_cannot_rotate(hosts, argv):
    a, _ = hosts
    a.run("keys", "init")
    before = (a.keys_dir / "pseudonym.key").read_bytes()
    code, out, err = a.run("keys", *argv)
    assert (code, out) == (2, "")
    assert err.startswith("Erreur : La clé de pseudonymisation ne peut pas être renouvelée : "
                          "le registre ne garde que HMAC(clé, numéro), jamais le numéro")
    assert (a.keys_dir / "pseudonym.key").read_bytes() == before


def test_keys_can_come_from_the_environment(tmp_path):
    from bot import settings as settings_module

    env = {"VOICEBOT_PATHS_STATE_DIR": str(tmp_path / "var"),
           "VOICEBOT_LEDGER_PSEUDONYM_KEY": "k" * 40,
           "VOICEBOT_LEDGER_TRANSCRIPT_KEY": f"{'1' * 64},{'2' * 64}"}
    ledger = Ledger.open(settings_module.load(env=env))
    try:
        assert len(ledger.cipher.key_ids) == 2
        assert ledger.record_interaction(interaction("e1", transcript="x")) is \
            RecordResult.STORED
    finally:
        ledger.close()
    assert not (tmp_path / "var" / "secrets").exists()


def _settings(host: Host):
    from bot import settings as settings_module

    return settings_module.load(host.config, env={})


def test_voicebot_serve_with_another_key_stops_before_writing(hosts, tmp_path):
    a, b = hosts
    assert a.run("ledger", "import", MARCH)[0] == 0
    b.run("keys", "init")
    code, _, err = b.run("serve")
    assert code == 2
    assert err.splitlines()[-1].startswith(
        "Erreur : La clé de pseudonymisation de ce processus (empreinte ")
    assert "Installez les clés du déploiement" in err
