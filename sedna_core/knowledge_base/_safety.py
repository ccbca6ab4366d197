"""Safe names for what clients upload.

What the knowledge base *accepts* is decided by parsing, against an allow-list of formats
(:mod:`sedna_core.artifacts._formats`); this module only turns a client's file name into a
store-safe one.
"""

from __future__ import annotations

import re

__all__ = ["safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(filename: str | None, default: str = "file") -> str:
    """A store-safe artifact name from a client's file name: its last path component, with
    anything outside ``[A-Za-z0-9._-]`` replaced, no leading dots, at most 128 characters."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = _UNSAFE.sub("_", base).lstrip("._-")
    base = base.replace("..", "_")[:128]
    return base or default
