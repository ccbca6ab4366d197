"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: framework modules are imported inside the algorithm classes, when used.
"""

from __future__ import annotations

from sedna_core.plugins import hookimpl  # noqa: F401  (filled in by this plugin's issue)
