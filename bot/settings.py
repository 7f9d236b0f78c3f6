"""The one settings object: each package's options, read from a YAML file and the environment.

Precedence, lowest first: the dataclass defaults, the file (``voicebot.yml`` in the project
root, or the path in ``VOICEBOT_CONFIG``), then ``VOICEBOT_<SECTION>_<FIELD>`` variables
(``VOICEBOT_ASR_DEVICE=cuda``). A few variables have short names that outside scripts use
(``VOICEBOT_DB_URL``). Settings are built once at start-up and passed down; nothing reads
the environment anywhere else.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from asr.options import AsrOptions, VadOptions
from bot.errors import SettingsError
from console.options import ConsoleOptions
from ledger.options import LedgerOptions
from telephony_adapter.kamailio_config import BalancerOptions
from telephony_adapter.options import NodeOptions, TelephonyOptions
from tts.options import TtsOptions

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENV_PREFIX = "VOICEBOT_"
ALIASES = {
    "VOICEBOT_DB_URL": ("ledger", "db_url"),
}


@dataclass(frozen=True)
class PathsOptions:
    knowledge_dir: Path = PROJECT_ROOT / "knowledge"
    """The editors' YAML files."""
    state_dir: Path = PROJECT_ROOT / "var"
    """Trained models, the published knowledge base, audio cache, ledger, spool."""
    models_dir: Path = PROJECT_ROOT / "models"
    """Downloaded or assembled model files (Whisper, Piper voices)."""
    generated_dir: Path = PROJECT_ROOT / "bot" / "data" / "generated"
    """Rasa training data compiled from the knowledge base (never edited by hand)."""


@dataclass(frozen=True)
class DialogueOptions:
    max_misunderstandings: int = 2
    """Misunderstood turns in a row after which the caller goes to an advisor."""
    whole_question_confidence: float = 0.8
    """A short utterance whose transcript at a pause is a motif understood with at least
    this confidence ends its turn after ``vad.end_silence_ms`` instead of
    ``vad.short_end_silence_ms`` (bot/pipeline.py, "whole question"); 1.01 switches it off."""
    # Confidence floors (bot/actions/floors.py): the least classifier confidence each action
    # needs; a turn under its floor is handled as not understood (rephrase once, then an
    # advisor). Turns handed over by a trigger phrase or a key have confidence 1.0. The
    # FallbackClassifier threshold in config.yml (0.25) already applies to every turn.
    answer_confidence: float = 0.25
    """Floor (0-1) for answering a FAQ entry."""
    reorient_confidence: float = 0.25
    """Floor (0-1) for saying where a question is handled (personal file, other body)."""
    handoff_confidence: float = 0.25
    """Floor (0-1) for a transfer the classifier chose (an advisor asked for, an urgency);
    low on purpose: transferring a caller who did not need it is the cheap mistake."""
    goodbye_confidence: float = 0.6
    """Floor (0-1) for a goodbye, which ends the call. A caller is never dropped on a guess;
    two silences in a row also end in a transfer (bot/pipeline.py)."""
    no_confidence: float = 0.5
    """Floor (0-1) for "non", which ends the call after an answer or an advisor offer."""
    yes_confidence: float = 0.5
    """Floor (0-1) for "oui", which transfers the call after an advisor offer."""
    small_talk_confidence: float = 0.4
    """Floor (0-1) for hello, thanks and "répétez"."""
    frustration_words: tuple[str, ...] = (
        "marre", "ras le bol", "n'importe quoi", "c'est nul", "énervé", "énervée", "agacé",
        "insupportable", "inadmissible", "inacceptable", "scandale", "scandaleux", "honteux",
        "débile", "stupide", "vous comprenez rien", "tu comprends rien", "ça marche pas",
        "j'en peux plus", "laissez tomber")
    """Words or phrases (accents and case ignored, whole words) that flag a caller's
    frustration in the supervisors' analysis; counted per call, never stored as words. A
    caller who says one is never told goodbye (bot/actions/floors.py)."""


@dataclass(frozen=True)
class Settings:
    paths: PathsOptions = field(default_factory=PathsOptions)
    dialogue: DialogueOptions = field(default_factory=DialogueOptions)
    asr: AsrOptions = field(default_factory=AsrOptions)
    vad: VadOptions = field(default_factory=VadOptions)
    tts: TtsOptions = field(default_factory=TtsOptions)
    ledger: LedgerOptions = field(default_factory=LedgerOptions)
    telephony: TelephonyOptions = field(default_factory=TelephonyOptions)
    balancer: BalancerOptions = field(default_factory=BalancerOptions)
    node: NodeOptions = field(default_factory=NodeOptions)
    console: ConsoleOptions = field(default_factory=ConsoleOptions)


def load(file: Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from defaults, then the YAML file, then the environment."""
    env = os.environ if env is None else env
    if file is None and env.get("VOICEBOT_CONFIG"):
        file = Path(env["VOICEBOT_CONFIG"])
    if file is None and (PROJECT_ROOT / "voicebot.yml").exists():
        file = PROJECT_ROOT / "voicebot.yml"

    values: dict[str, dict[str, Any]] = {}
    if file is not None:
        values = _read_file(file)
    for name, raw in env.items():
        target = _env_target(name)
        if target is not None:
            section, key = target
            values.setdefault(section, {})[key] = raw
    return _build(Settings, values, origin=str(file) if file else "l'environnement")


def _read_file(file: Path) -> dict[str, dict[str, Any]]:
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise SettingsError(f"Fichier de configuration introuvable : {file}") from None
    except (IsADirectoryError, PermissionError) as exc:
        raise SettingsError(f"{file} : fichier de configuration illisible ({exc.strerror})."
                            ) from None
    except UnicodeDecodeError:
        raise SettingsError(f"{file} : le fichier n'est pas en UTF-8 ; enregistrez-le en "
                            "UTF-8.") from None
    except yaml.YAMLError as exc:
        raise SettingsError(f"{file} : YAML invalide ({exc})") from None
    except ValueError as exc:  # e.g. an impossible date, which safe_load turns into a date
        raise SettingsError(f"{file} : valeur invalide ({exc}).") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise SettingsError(
            f"{file} : chaque section (paths, asr, tts…) doit être un dictionnaire de réglages."
        )
    return data


def _env_target(name: str) -> tuple[str, str] | None:
    if name in ALIASES:
        return ALIASES[name]
    if not name.startswith(ENV_PREFIX):
        return None
    rest = name[len(ENV_PREFIX) :].lower()
    section, _, key = rest.partition("_")
    sections = {f.name for f in fields(Settings)}
    if section in sections and key:
        return section, key
    return None


def _build(cls: type, values: Mapping[str, Any], origin: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SettingsError(
            f"{origin} : réglage inconnu « {unknown[0]} » dans {cls.__name__}. "
            f"Réglages possibles : {', '.join(sorted(known))}."
        )
    kwargs: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in values:
            continue
        kind = hints[f.name]
        raw = values[f.name]
        if is_dataclass(kind):
            if not isinstance(raw, Mapping):
                raise SettingsError(
                    f"{origin} : la section « {f.name} » doit être un dictionnaire."
                )
            kwargs[f.name] = _build(kind, raw, origin)
        else:
            kwargs[f.name] = _coerce(raw, kind, f"{cls.__name__}.{f.name}", origin)
    return cls(**kwargs)


def _coerce(raw: Any, kind: Any, name: str, origin: str) -> Any:
    origin_type = typing.get_origin(kind)
    if origin_type is typing.Union or origin_type is types.UnionType:
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if raw is None or raw == "":
            return None
        kind = options[0]
        origin_type = typing.get_origin(kind)
    try:
        if kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "oui", "on"}:
                return True
            if text in {"0", "false", "no", "non", "off"}:
                return False
            raise ValueError(raw)
        if kind is Path:
            path = Path(str(raw)).expanduser()
            return path if path.is_absolute() else PROJECT_ROOT / path
        if origin_type is tuple:
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            item_kind = typing.get_args(kind)[0]
            return tuple(_coerce(i.strip() if isinstance(i, str) else i, item_kind, name, origin)
                         for i in items if i != "")
        if kind in (int, float, str):
            return kind(raw)
    except (TypeError, ValueError):
        raise SettingsError(
            f"{origin} : valeur « {raw} » invalide pour {name} (attendu : {_french_type(kind)})."
        ) from None
    raise SettingsError(f"{name} : type de réglage non géré ({kind}).")


def _french_type(kind: Any) -> str:
    return {int: "un entier", float: "un nombre", bool: "true ou false", str: "un texte",
            Path: "un chemin"}.get(kind, str(kind))


def replace(settings: Settings, **sections: Any) -> Settings:
    """Return a copy with some options changed: ``replace(s, asr={"device": "cuda"})``."""
    changes = {}
    for name, updates in sections.items():
        changes[name] = dataclasses.replace(getattr(settings, name), **updates)
    return dataclasses.replace(settings, **changes)
