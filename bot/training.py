"""Train the Rasa model for a knowledge base, or reuse the one already trained for it.

Models are stored under ``<state_dir>/models/<fingerprint>.tar.gz``: the fingerprint covers
what the model learns (ids, motifs, questions) and how (config, domain, hand-written data,
Rasa version), never the answers' wording. Same fingerprint, same model: nothing to do.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bot.kb.compile import compile_training_data
from bot.kb.model import KnowledgeBase
from bot.rasa_env import prepare_rasa
from bot.settings import PROJECT_ROOT, Settings

log = logging.getLogger(__name__)
CONFIG_FILE = PROJECT_ROOT / "config.yml"
DOMAIN_FILE = PROJECT_ROOT / "domain.yml"
HAND_WRITTEN_DATA = PROJECT_ROOT / "bot" / "data"
COMPILER_VERSION = "1"  # bump when bot/kb/compile.py changes what it writes


@dataclass(frozen=True)
class TrainResult:
    model_path: Path
    fingerprint: str
    trained: bool
    seconds: float

    def summary(self) -> str:
        if self.trained:
            return f"Modèle entraîné en {self.seconds:.0f} s : {self.model_path}"
        return f"Modèle déjà à jour (empreinte {self.fingerprint}) : {self.model_path}"


def model_fingerprint(kb: KnowledgeBase) -> str:
    import rasa

    digest = hashlib.sha256()
    for part in (kb.training_fingerprint(), rasa.__version__, COMPILER_VERSION):
        digest.update(part.encode())
    for path in [CONFIG_FILE, DOMAIN_FILE, *_hand_written_files()]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def model_path_for(settings: Settings, fingerprint: str) -> Path:
    return settings.paths.state_dir / "models" / f"{fingerprint}.tar.gz"


def train_model(settings: Settings, kb: KnowledgeBase, force: bool = False) -> TrainResult:
    prepare_rasa(settings.paths.state_dir)
    fingerprint = model_fingerprint(kb)
    target = model_path_for(settings, fingerprint)
    if target.exists() and not force:
        return TrainResult(target, fingerprint, trained=False, seconds=0.0)

    from rasa.model_training import train

    start = time.monotonic()
    generated = compile_training_data(kb, DOMAIN_FILE, settings.paths.generated_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(sys.stderr):  # Rasa prints; stdout stays the command's own
        result = train(
            domain=str(generated["domain"]),
            config=str(CONFIG_FILE),
            training_files=[str(generated["nlu"]), str(generated["rules"]),
                            *map(str, _hand_written_files())],
            output=str(target.parent),
            fixed_model_name=fingerprint,
            force_training=True,
        )
    if result.code != 0 or not target.exists():
        raise RuntimeError(f"Rasa training failed with code {result.code}")
    seconds = time.monotonic() - start
    log.info("trained %s in %.1f s", target, seconds)
    return TrainResult(target, fingerprint, trained=True, seconds=seconds)


def _hand_written_files() -> list[Path]:
    return sorted(HAND_WRITTEN_DATA.glob("*.yml"))
