"""Which Whisper model ``AsrOptions.model`` names, and loading it with French errors.

A value is, in order: an existing directory (a CTranslate2 model), the name of a
directory under the models directory (``whisper-base``, assembled at set-up), or a name
faster-whisper downloads from the Hugging Face hub (``small``, ``large-v3``, ``org/repo``).
The last one needs a reachable hub; on this project's machines there is none, so the
error says so and lists what would work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.options import AsrOptions
from bot.errors import VoicebotError


class AsrModelError(VoicebotError):
    """The configured Whisper model cannot be found or loaded."""


@dataclass(frozen=True)
class ModelSource:
    location: str
    """What faster-whisper receives: a directory path or a hub name."""
    local: bool


def resolve_model(name: str, models_dir: Path) -> ModelSource:
    path = Path(name).expanduser()
    if path.is_dir():
        return ModelSource(str(path), local=True)
    if "/" not in name and (models_dir / name).is_dir():
        return ModelSource(str(models_dir / name), local=True)
    from faster_whisper.utils import available_models

    if name.startswith("whisper-") or (name not in available_models() and "/" not in name):
        raise AsrModelError(
            f"Modèle Whisper « {name} » introuvable : ce n'est ni un dossier, ni un dossier de "
            f"{models_dir}, ni un nom connu de faster-whisper ({', '.join(available_models())}). "
            "Pour le modèle par défaut, lancez scripts/models.sh."
        )
    return ModelSource(name, local=False)


def load_whisper(options: AsrOptions, models_dir: Path):
    """Load ``options.model`` as a ``faster_whisper.WhisperModel``, or raise AsrModelError."""
    import ctranslate2
    from faster_whisper import WhisperModel

    source = resolve_model(options.model, models_dir)
    valid_devices = ("cpu", "cuda", "auto")
    if options.device not in valid_devices:
        raise AsrModelError(
            f"asr.device « {options.device} » invalide ; valeurs possibles : "
            f"{', '.join(valid_devices)}."
        )
    if options.device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise AsrModelError(
            "asr.device vaut « cuda » mais aucun GPU CUDA n'est visible sur cette machine ; "
            "mettez asr.device à « cpu » (et asr.compute_type à « int8 »)."
        )
    device = options.device
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() else "cpu"
    supported = sorted(ctranslate2.get_supported_compute_types(device))
    if options.compute_type not in (*supported, "auto", "default"):
        raise AsrModelError(
            f"asr.compute_type « {options.compute_type} » n'est pas pris en charge sur {device} ; "
            f"valeurs possibles : {', '.join(supported)}."
        )
    try:
        return WhisperModel(
            source.location,
            device=device,
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
            download_root=None if source.local else str(models_dir / "hub"),
        )
    except Exception as exc:  # noqa: BLE001 - CTranslate2 and the hub raise many kinds
        if source.local:
            raise AsrModelError(
                f"Le dossier {source.location} ne contient pas un modèle Whisper CTranslate2 "
                f"utilisable ({type(exc).__name__}: {exc}). Il faut model.bin, config.json, "
                "tokenizer.json et vocabulary.txt ; pour le modèle par défaut, lancez "
                "scripts/models.sh."
            ) from exc
        raise AsrModelError(
            f"Impossible de télécharger le modèle Whisper « {source.location} » "
            f"({type(exc).__name__}) : le hub Hugging Face est-il joignable ? Sans réseau, "
            "copiez le modèle CTranslate2 dans un dossier et indiquez son chemin dans "
            "asr.model (VOICEBOT_ASR_MODEL), ou utilisez « whisper-base »."
        ) from exc
