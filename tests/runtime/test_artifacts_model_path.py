"""Sedna's model-path rules: MODEL_URL a file or a folder, MODEL_NAME, MODEL_PATH, load mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedna_core.artifacts import resolve_model_path
from sedna_core.config import JobConfig
from sedna_core.errors import ConfigError

DEFAULT = "model_finetune_keras.keras"


def config(**env: str) -> JobConfig:
    return JobConfig.from_env(env)


def test_existing_file_is_the_model_and_model_name_is_ignored(tmp_path: Path) -> None:
    model = tmp_path / "model.pb"
    model.write_bytes(b"x")
    assert resolve_model_path(config(MODEL_URL=str(model)), DEFAULT, environ={}) == str(model)
    cfg = config(MODEL_URL=str(model), MODEL_NAME="other.pb")
    assert resolve_model_path(cfg, DEFAULT, environ={}) == str(model)
    assert resolve_model_path(config(MODEL_URL=model.as_uri()), DEFAULT, environ={}) == str(model)


def test_folder_gets_model_name_or_default(tmp_path: Path) -> None:
    folder = str(tmp_path / "models")  # need not exist yet: training writes it
    assert (
        resolve_model_path(config(MODEL_URL=folder), DEFAULT, environ={}) == f"{folder}/{DEFAULT}"
    )
    cfg = config(MODEL_URL=folder, MODEL_NAME="mine.keras")
    assert resolve_model_path(cfg, DEFAULT, environ={}) == f"{folder}/mine.keras"
    cfg = config(MODEL_URL=folder + "/")
    assert resolve_model_path(cfg, DEFAULT, environ={}) == f"{folder}/{DEFAULT}"


def test_model_path_override_applies_unless_model_url_is_a_file(tmp_path: Path) -> None:
    folder = str(tmp_path)
    for env in ({"MODEL_PATH": "/explicit/m.pt"}, {"model_path": "/explicit/m.pt"}):
        assert (
            resolve_model_path(config(MODEL_URL=folder), DEFAULT, environ=env) == "/explicit/m.pt"
        )
        assert resolve_model_path(config(), DEFAULT, environ=env) == "/explicit/m.pt"
    model = tmp_path / "m.bin"
    model.write_bytes(b"x")
    env = {"MODEL_PATH": "/explicit/m.pt"}
    assert resolve_model_path(config(MODEL_URL=str(model)), DEFAULT, environ=env) == str(model)


def test_load_mode_other_than_file_passes_model_url_through() -> None:
    cfg = config(MODEL_URL="bert-base-uncased", MODEL_LOAD_MODE="hf", MODEL_NAME="x.bin")
    assert resolve_model_path(cfg, DEFAULT, environ={}) == "bert-base-uncased"


def test_remote_urls() -> None:
    def resolve(**env: str) -> str:
        return resolve_model_path(config(**env), DEFAULT, environ={})

    assert resolve(MODEL_URL="s3://bucket/models/") == f"s3://bucket/models/{DEFAULT}"
    assert resolve(MODEL_URL="s3://bucket/models/m.pb") == "s3://bucket/models/m.pb"
    assert resolve(MODEL_URL="s3://bucket/models", MODEL_NAME="m.pb") == "s3://bucket/models/m.pb"
    assert resolve(MODEL_URL="https://host/m/", MODEL_NAME="m.pb") == "https://host/m/m.pb"


@pytest.mark.parametrize("name", ["../evil.pb", "a/b.pb", "..", "a\\b"])
def test_unsafe_model_names_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="MODEL_NAME"):
        resolve_model_path(config(MODEL_URL=str(tmp_path), MODEL_NAME=name), DEFAULT, environ={})


def test_nothing_configured_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="MODEL_URL"):
        resolve_model_path(config(), DEFAULT, environ={})
