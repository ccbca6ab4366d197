"""The plugin system: hook markers, discovery, the algorithm registry, lifecycle announcements.

Plugin authors need :data:`hookimpl`; jobs need :func:`create_algorithm` and :func:`announce`;
tests need :class:`SednaPluginManager` (or the ``sedna_pm`` fixture of
:mod:`sedna_core.testing`).
"""

from sedna_core.plugins._announce import announce
from sedna_core.plugins._manager import (
    AlgorithmEntry,
    PluginInfo,
    SednaPluginManager,
    current_plugin_manager,
    get_plugin_manager,
    reset_plugin_manager,
)
from sedna_core.plugins._markers import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec
from sedna_core.plugins._registry import (
    AlgorithmSpec,
    create_algorithm,
    describe_algorithm,
    parse_spec,
    resolve_algorithm,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PROJECT_NAME",
    "AlgorithmEntry",
    "AlgorithmSpec",
    "PluginInfo",
    "SednaPluginManager",
    "announce",
    "create_algorithm",
    "current_plugin_manager",
    "describe_algorithm",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "parse_spec",
    "reset_plugin_manager",
    "resolve_algorithm",
]
