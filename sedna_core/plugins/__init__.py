"""The plugin system: hook markers, discovery, the algorithm registry."""

from sedna_core.plugins._markers import ENTRY_POINT_GROUP, PROJECT_NAME, hookimpl, hookspec

__all__ = ["ENTRY_POINT_GROUP", "PROJECT_NAME", "hookimpl", "hookspec"]
