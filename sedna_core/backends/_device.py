"""Which device a framework should use, from Sedna's environment variables."""

from __future__ import annotations

import os
from collections.abc import Mapping

from sedna_core.errors import ConfigError

__all__ = ["device_from_env"]


def device_from_env(env: Mapping[str, str] | None = None) -> str:
    """``"cuda"`` or ``"cpu"`` from ``DEVICE_CATEGORY`` and ``CUDA_VISIBLE_DEVICES``.

    ``DEVICE_CATEGORY`` (``CPU`` or ``GPU``) wins when set; otherwise a ``CUDA_VISIBLE_DEVICES``
    naming a device (not empty, not ``-1``) means GPU, as in Sedna. Read when called, never
    written back (Sedna mutated ``os.environ``). Backends fall back to the CPU, with a warning,
    when the framework sees no GPU.
    """
    source = os.environ if env is None else env
    category = (source.get("DEVICE_CATEGORY") or "").strip().upper()
    if category in ("GPU", "CUDA"):
        return "cuda"
    if category == "CPU":
        return "cpu"
    if category:
        raise ConfigError("DEVICE_CATEGORY", category, "CPU or GPU")
    visible = (source.get("CUDA_VISIBLE_DEVICES") or "").strip()
    return "cuda" if visible and visible != "-1" else "cpu"
