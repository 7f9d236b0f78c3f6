"""A published copy of the shipped knowledge base for the editor tests, and page helpers.

Every editor test works on its own copy of ``knowledge/`` and of a published state
directory (model shared with ``var/models`` by fingerprint, audio pre-rendered once per
session), never on the repository's files: content editors change those meanwhile.
"""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from console_support import console_settings_for

from bot.settings import PROJECT_ROOT, Settings

ENTRY = "mdp_oublie_reinitialiser"
ENTRY_FILE = "mon_compte.yml"
QUESTION = "j'ai oublié mon mot de passe"
TOO_LONG_ANSWER = " ".join(["Allez sur caf point fr puis cliquez sur mot de passe oublié."] * 12)
"""About 130 words: over the 45 seconds (112 words) an answer may last."""


def publish_copy(root: Path) -> Settings:
    """Copy knowledge/ under ``root`` and publish it there, as ``voicebot kb publish`` does."""
    from bot.kb.publish import publish
    from tts.speaker import prerender

    shutil.copytree(PROJECT_ROOT / "knowledge", root / "knowledge",
                    ignore=shutil.ignore_patterns(".*"))
    state = root / "state"
    state.mkdir(parents=True)
    cache = PROJECT_ROOT / "var" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    (state / "models").symlink_to(cache, target_is_directory=True)
    settings = editor_settings(root)
    publish(settings, render_audio=lambda kb: prerender(settings, kb))
    return settings


def clone(template: Path, root: Path) -> Settings:
    """A private copy of a published ``template`` (knowledge files and state directory)."""
    shutil.copytree(template / "knowledge", root / "knowledge")
    shutil.copytree(template / "state", root / "state", symlinks=True)
    return editor_settings(root)


def editor_settings(root: Path) -> Settings:
    return console_settings_for(root / "state", paths={"knowledge_dir": root / "knowledge"})


def form_fields(page: str) -> dict[str, str]:
    """The entry form's values as the browser would send them back."""
    def textarea(name: str) -> str:
        found = re.search(rf'<textarea id="{name}" name="{name}"[^>]*>(.*?)</textarea>', page,
                          re.S)
        assert found, f"no textarea {name}"
        return html.unescape(found.group(1))

    def value(name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', page)
        assert found, f"no field {name}"
        return html.unescape(found.group(1))

    return {"questions": textarea("questions"), "answer": textarea("answer"),
            "source": value("source"), "reviewed": value("reviewed"),
            "version": value("version"), "csrf_token": value("csrf_token")}


def field_block(page: str, name: str) -> str:
    """The part of the form that belongs to field ``name``: from its label to the next one."""
    start = page.index(f'<label for="{name}">')
    following = page.find("<label for=", start + 1)
    return html.unescape(page[start:following if following > 0 else len(page)])
