"""Session fixtures shared by every test package: real components, built once.

The Rasa model is trained on the shipped knowledge base once and cached by fingerprint in
``var/models`` (the set-up already trains it, so a test run usually reuses it); each test
session publishes into its own temporary state directory, never into the operator's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from bot import settings as settings_module
from bot.settings import PROJECT_ROOT, Settings

T = TypeVar("T")


@pytest.fixture(scope="session")
def event_loop_runner() -> Iterator[Callable[[Coroutine[Any, Any, T]], T]]:
    """One event loop for the session: Rasa's agent must stay on the loop it was loaded in."""
    loop = asyncio.new_event_loop()
    yield loop.run_until_complete
    loop.close()


def make_settings(state_dir: Path, **sections: dict) -> Settings:
    base = settings_module.load(env={})
    paths = {"state_dir": state_dir, "generated_dir": state_dir / "generated"}
    paths.update(sections.pop("paths", {}))
    return settings_module.replace(base, paths=paths, **sections)


def share_model_cache(state_dir: Path) -> None:
    """Point a test state directory's models at the project's cache of trained models."""
    cache = PROJECT_ROOT / "var" / "models"
    cache.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    link = state_dir / "models"
    if not link.exists():
        link.symlink_to(cache, target_is_directory=True)


@pytest.fixture(scope="session")
def published_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings with the shipped knowledge base published (model trained at most once) and
    its audio pre-rendered, as ``voicebot kb publish`` does."""
    from bot.kb.publish import publish
    from tts.speaker import prerender

    state = tmp_path_factory.mktemp("state")
    share_model_cache(state)
    settings = make_settings(state)
    publish(settings, render_audio=lambda kb: prerender(settings, kb))
    return settings


@pytest.fixture(scope="session")
def dialogue(published_settings: Settings, event_loop_runner):
    from bot.dialogue import Dialogue

    return event_loop_runner(Dialogue.load(published_settings))


@pytest.fixture(scope="session")
def voice_services(published_settings: Settings, dialogue):
    """The voice pipeline's shared models (Whisper base, Silero, espeak cache, the dialogue)."""
    from asr.transcriber import Transcriber
    from asr.vad import SileroModel
    from bot.pipeline import VoiceServices
    from tts.speaker import Speaker

    return VoiceServices(
        published_settings,
        Transcriber.load(published_settings.asr, published_settings.paths.models_dir),
        SileroModel.load(), dialogue, Speaker.load(published_settings))
