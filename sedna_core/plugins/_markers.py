"""Typed pluggy markers for the ``sedna`` project."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "sedna"
ENTRY_POINT_GROUP = "sedna.plugins"

#: Marks a hook specification in :mod:`sedna_core.plugins._hookspecs`.
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a hook implementation in a plugin module: ``@hookimpl def sedna_register_backends(): ...``
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
