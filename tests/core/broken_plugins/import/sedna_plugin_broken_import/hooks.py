"""Raises while being imported: the plugin's status must be ``error``."""

raise RuntimeError("sedna-plugin-broken-import fails on import on purpose")
