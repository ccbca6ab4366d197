"""Configuration of lifelong-learning jobs and of the knowledge-base service.

Sedna's variables keep their names (``KB_SERVER``, ``OUTPUT_URL``, ``MIN_TRAIN_SAMPLE``,
``operator``, ``model_threshold``, ``KnowledgeBaseServer``, ``KnowledgeBasePath``, ``KB_URL``...);
explicit arguments win, then the environment, then these defaults.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import attrs

from sedna_core.config._common import DEFAULT_MAX_REQUEST_SIZE, JobConfig, ServiceConfig
from sedna_core.config._settings import (
    setting,
    to_bool,
    to_float,
    to_port,
    to_positive_float,
    to_positive_int,
)
from sedna_core.errors import ConfigError

__all__ = ["DEFAULT_KB_PORT", "KnowledgeBaseConfig", "LifelongConfig"]

#: Sedna's knowledge-base port
DEFAULT_KB_PORT = 9020

_OPERATORS = (">", "<", "=", ">=", "<=")


def to_operator(raw: str) -> str:
    value = raw.strip()
    if value not in _OPERATORS:
        raise ValueError(raw)
    return value


def to_fraction(raw: str) -> float:
    value = float(raw.strip())
    if not 0.0 <= value < 1.0:
        raise ValueError(raw)
    return value


to_operator.accepted = "one of >, <, =, >=, <="  # type: ignore[attr-defined]
to_fraction.accepted = "a number in [0, 1)"  # type: ignore[attr-defined]


@attrs.frozen
class LifelongConfig(JobConfig):
    """A lifelong-learning job's settings.

    ``operator``/``model_threshold`` form Sedna's evaluation drop rule: a task whose score
    satisfies ``score <operator> threshold`` is not deployed. The defaults (``<`` and 0) drop
    nothing; Sedna's (``>`` and 0.1) dropped every useful model.
    """

    kb_server: str | None = setting("KB_SERVER")
    output_url: str | None = setting("OUTPUT_URL")
    edge_output_url: str | None = setting("edge_output_url")
    model_urls: str | None = setting("MODEL_URLS")
    cloud_kb_index: str | None = setting("CLOUD_KB_INDEX")
    has_completed_initial_training: bool = setting(
        "HAS_COMPLETED_INITIAL_TRAINING", default=False, convert=to_bool
    )
    min_train_sample: int = setting("MIN_TRAIN_SAMPLE", default=10, convert=to_positive_int)
    operator: str = setting("operator", default="<", convert=to_operator)
    model_threshold: float = setting("model_threshold", default=0.0, convert=to_float)
    validation_fraction: float = setting("LL_VALIDATION_FRACTION", default=0.2, convert=to_fraction)
    unseen_save_url: str | None = setting("unseen_save_url")
    kb_poll_period: float = setting(
        "MODEL_POLL_PERIOD_SECONDS", default=30.0, convert=to_positive_float
    )
    random_state: int = setting("LL_RANDOM_STATE", default=0, convert=int)
    kb_retries: int = setting("KB_RETRIES", default=2, convert=int)

    def __attrs_post_init__(self) -> None:
        if self.operator not in _OPERATORS:
            raise ConfigError("operator", self.operator, "one of >, <, =, >=, <=")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ConfigError("LL_VALIDATION_FRACTION", self.validation_fraction, "[0, 1)")


@attrs.frozen
class KnowledgeBaseConfig(ServiceConfig):
    """The knowledge-base service: where it binds, where it keeps its data.

    ``KnowledgeBaseServer=http://IP:PORT`` (Sedna's way to give the bind address) sets host and
    port unless ``KB_BIND_IP``/``KB_BIND_PORT`` do. The database defaults to a SQLite file in
    ``data_dir``; artifacts live in ``data_dir/artifacts``.
    """

    host: str = setting(("KB_BIND_IP", "SEDNA_BIND_IP"), default="127.0.0.1")
    port: int = setting(
        ("KB_BIND_PORT", "SEDNA_BIND_PORT"), default=DEFAULT_KB_PORT, convert=to_port
    )
    server_url: str | None = setting("KnowledgeBaseServer")
    data_dir: str = setting(("KnowledgeBasePath", "KB_DATA_DIR"), default="sedna-kb")
    db_url: str | None = setting("KB_URL")
    # A task index is legitimately large JSON (about 470 bytes a task: 10k tasks are 4.7 MB,
    # over the 4 MiB other services allow); it is decoded off the event loop, slice by slice.
    max_json_size: int = setting(
        "SEDNA_MAX_JSON_SIZE", default=DEFAULT_MAX_REQUEST_SIZE, convert=to_positive_int
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, /, **explicit: Any) -> Self:
        """As :meth:`Settings.from_env`, plus Sedna's ``KnowledgeBaseServer`` bind URL."""
        source = os.environ if env is None else env
        config = super().from_env(source, **explicit)
        if config.server_url:
            parts = urlsplit(config.server_url)
            if not parts.hostname or parts.scheme not in ("http", "https"):
                raise ConfigError("KnowledgeBaseServer", config.server_url, "http(s)://IP:PORT")
            changes: dict[str, object] = {}
            names = cls.env_names()
            if explicit.get("host") is None and not any(source.get(v) for v in names["host"]):
                changes["host"] = parts.hostname
            if explicit.get("port") is None and not any(source.get(v) for v in names["port"]):
                changes["port"] = parts.port or DEFAULT_KB_PORT
            config = attrs.evolve(config, **changes)
        return config

    @property
    def database_url(self) -> str:
        """``db_url``, else a SQLite file in ``data_dir``."""
        if self.db_url:
            return self.db_url
        return f"sqlite:///{Path(self.data_dir).expanduser().resolve() / 'kb.sqlite3'}"
