"""Configuration: attrs classes per job and service.

Precedence everywhere: explicit argument, then Sedna's environment variable, then the default.
Nothing is read at import time and nothing global is mutated.
"""

from sedna_core.config._common import JobConfig, ServiceConfig
from sedna_core.config._settings import (
    Settings,
    setting,
    to_bool,
    to_float,
    to_int,
    to_json,
    to_list,
    to_optional_str,
    to_port,
    to_positive_float,
    to_positive_int,
)

__all__ = [
    "JobConfig",
    "ServiceConfig",
    "Settings",
    "setting",
    "to_bool",
    "to_float",
    "to_int",
    "to_json",
    "to_list",
    "to_optional_str",
    "to_port",
    "to_positive_float",
    "to_positive_int",
]
