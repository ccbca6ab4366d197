"""Implements a hook sedna-core does not declare: the plugin's status must be ``incompatible``."""

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_time_machines() -> list[type]:
    return []
