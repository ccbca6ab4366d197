"""Sedna's configuration access: ``Context`` (live environment reads) and ``BaseConfig``.

``BaseConfig.train_dataset_url`` and the other attributes are read from the environment *when
accessed* (Sedna froze them at import time), through sedna-core's
:class:`~sedna_core.config.JobConfig`; an attribute it does not know reads the environment
variable of the same name in upper case. Nothing global is mutated.
"""

from __future__ import annotations

import json
import os
from typing import Any

import attrs

from sedna_core.config import JobConfig

__all__ = ["BaseConfig", "Context"]

#: Sedna's attribute names that sedna-core does not spell the same way
_ALIASES = {"service_name": "job_name"}
_SEDNA_DEFAULTS = {"lc_server": "http://127.0.0.1:9100", "backend_type": "UNKNOWN"}


class Context:
    """Sedna's ``Context``: parameters from the environment, algorithms from the CRD."""

    @staticmethod
    def get_parameters(param: str, default: Any = None) -> Any:
        """``os.environ[param]`` (or its upper-case form); unset or empty -> ``default``."""
        value = os.environ.get(param) or os.environ.get(param.upper())
        return value if value else default

    @classmethod
    def get_algorithm_from_api(cls, algorithm: str, **param: Any) -> dict[str, Any]:
        """``{"method": <ALGORITHM>_NAME, "param": {...}}`` from the CRD's variables, or ``{}``.

        ``<ALGORITHM>_PARAMETERS`` is the CRD's ``[{"key": k, "value": v}, ...]`` list (a JSON
        object is accepted too; anything unparsable counts as none); keyword arguments given here
        override it, as in Sedna.
        """
        name = cls.get_parameters(f"{algorithm}_NAME")
        if not name:
            return {}
        raw = cls.get_parameters(f"{algorithm}_PARAMETERS")
        params: dict[str, Any] = {}
        if raw:
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                params = dict(doc)
            elif isinstance(doc, list):
                params = {
                    str(item["key"]): item.get("value")
                    for item in doc
                    if isinstance(item, dict) and "key" in item
                }
        params.update(param)
        return {"method": name, "param": params}


class _LiveConfig(type):
    def __getattr__(cls, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _lookup(name)


def _lookup(name: str) -> Any:
    field = _ALIASES.get(name, name)
    config = JobConfig.from_env()
    if field in attrs.fields_dict(JobConfig):
        value = getattr(config, field)
        return value if value is not None else _SEDNA_DEFAULTS.get(name)
    return os.environ.get(name.upper()) or os.environ.get(name) or _SEDNA_DEFAULTS.get(name)


class BaseConfig(metaclass=_LiveConfig):
    """Sedna's ``BaseConfig``: ``BaseConfig.train_dataset_url``, ``BaseConfig().model_url``..."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return _lookup(name)
