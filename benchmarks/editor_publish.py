"""Console publish latency: from an editor's « Publier » to the running bot saying the new words.

A ``voicebot ask`` process (the real CLI, one Rasa model loaded, reading one question per
line) stands for the running line: like ``voicebot serve`` it reads the published base at
every turn. The benchmark changes an answer's wording through the console's HTTP form
(TestClient on the real app), asking the same question every 100 ms until the reply holds
the new wording, and prints one JSON object per round:

    .venv/bin/python benchmarks/editor_publish.py [--rounds 3]

Works on a temporary copy of knowledge/ and a temporary state directory (models shared
with var/models by fingerprint). Target: live within 5 s (issue 11).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "console"))  # the console tests' helpers

from conftest import console_settings_for, csrf_of, login, new_password  # noqa: E402

ENTRY = "mdp_oublie_reinitialiser"
QUESTION = "j'ai oublié mon mot de passe"
TARGET_S = 5.0
POLL_S = 0.1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="allo-caf-publish-") as tmp:
        root = Path(tmp)
        settings = _published(root)
        ask = _Ask(settings)
        try:
            results = [_round(settings, ask, n) for n in range(1, args.rounds + 1)]
        finally:
            ask.close()
    seconds = [r["live_s"] for r in results]
    print(json.dumps({"rounds": results, "live_s_max": max(seconds), "target_s": TARGET_S,
                      "load_average_1m": os.getloadavg()[0], "cpus": os.cpu_count()}))
    return 0


def _published(root: Path):
    from bot.kb.publish import publish
    from tts.speaker import prerender

    shutil.copytree(ROOT / "knowledge", root / "knowledge")
    state = root / "state"
    state.mkdir()
    cache = ROOT / "var" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    (state / "models").symlink_to(cache, target_is_directory=True)
    settings = console_settings_for(state, paths={"knowledge_dir": root / "knowledge"})
    publish(settings, render_audio=lambda kb: prerender(settings, kb))
    return settings


class _Ask:
    """``voicebot ask`` kept running: one line in, one JSON line out."""

    def __init__(self, settings):
        env = dict(os.environ, VOICEBOT_PATHS_STATE_DIR=str(settings.paths.state_dir),
                   VOICEBOT_PATHS_KNOWLEDGE_DIR=str(settings.paths.knowledge_dir),
                   VOICEBOT_PATHS_GENERATED_DIR=str(settings.paths.generated_dir))
        env.pop("VOICEBOT_CONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli.main", "ask"], cwd=ROOT, env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, bufsize=1)
        self.lock = threading.Lock()
        self.reply(QUESTION)  # waits for the model to load

    def reply(self, text: str) -> str:
        with self.lock:
            assert self.process.stdin and self.process.stdout
            self.process.stdin.write(text + "\n")
            self.process.stdin.flush()
            return json.loads(self.process.stdout.readline())["reply"]

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(60)


def _round(settings, ask: _Ask, number: int) -> dict:
    from fastapi.testclient import TestClient

    from console.app import create_app
    from console.users import UserStore
    from ledger.api import Ledger

    ledger = Ledger.open(settings, require_database=True, replay_spool=False)
    name = f"bench{number}"
    password = new_password()
    UserStore(ledger.engine, settings.console).add(name, "editeur", password)
    marker = f"Version de mesure {number} {time.time_ns() % 100000}."
    try:
        with TestClient(create_app(settings, ledger), base_url="https://testserver") as client:
            login(client, name, password)
            form = client.get(f"/editeur/fiches/{ENTRY}").text
            answer = re.search(r'<textarea id="answer"[^>]*>([^<]*)</textarea>', form).group(1)
            data = {"csrf_token": csrf_of(form), "action": "publier",
                    "version": re.search(r'name="version" value="([^"]+)"', form).group(1),
                    "questions": html.unescape(re.search(
                        r'<textarea id="questions"[^>]*>([^<]*)</textarea>', form).group(1)),
                    "answer": html.unescape(answer).split("\n")[0] + "\n" + marker,
                    "source": html.unescape(re.search(r'id="source" name="source" value="([^"]*)"',
                                                      form).group(1)),
                    "reviewed": re.search(r'id="reviewed" name="reviewed" value="([^"]*)"',
                                          form).group(1),
                    "commentaire": f"mesure de la mise en ligne n° {number}"}
            start = time.monotonic()
            posted = client.post(f"/editeur/fiches/{ENTRY}", data=data, follow_redirects=False)
            published_s = time.monotonic() - start
            if posted.status_code != 303:
                raise SystemExit(f"publication refused ({posted.status_code})")
            while marker not in ask.reply(QUESTION):
                if time.monotonic() - start > 120:
                    raise SystemExit("new wording not heard after 120 s")
                time.sleep(POLL_S)
            live_s = time.monotonic() - start
    finally:
        ledger.close()
    return {"round": number, "publish_request_s": round(published_s, 2),
            "live_s": round(live_s, 2)}


if __name__ == "__main__":
    raise SystemExit(main())
