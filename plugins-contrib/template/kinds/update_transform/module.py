"""The ``{{ algorithm_name }}`` update transform."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from sedna_core.algorithms import BaseUpdateTransform, TensorSpec, TransformContext
from sedna_core.errors import InvalidUpdateError

__all__ = ["{{ class_name }}"]


class {{ class_name }}(BaseUpdateTransform):
    """Send each floating-point tensor as its signs (int8) and one scale: its mean magnitude.

    signSGD-style compression (Bernstein et al. 2018): about 4x fewer bytes than float32; the
    decoded delta keeps every coordinate's direction and the tensor's average step. Clients
    apply it (``client_side``); the server decodes each update before checking it.

    Parameters
    ----------
    damping
        Factor on the decoded scale (below 1 takes smaller steps).
    """

    name: ClassVar[str] = "{{ algorithm_name }}"
    client_side: ClassVar[bool] = True

    def __init__(self, damping: float = 1.0) -> None:
        if not damping > 0:
            raise ValueError(f"damping must be > 0, got {damping!r}")
        self.damping = damping

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        out: list[TensorSpec] = []
        for s in specs:
            if s.dtype.kind == "f":
                out += [TensorSpec(s.name, np.int8, s.shape), TensorSpec(None, np.float32, (1,))]
            else:
                out.append(s)
        return out

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for d in delta:
            if d.dtype.kind != "f":
                out.append(d)
                continue
            scale = np.abs(d).mean() if d.size else 0.0
            out += [np.sign(d).astype(np.int8), np.array([scale], dtype=np.float32)]
        return out

    def decode(
        self, wire: list[np.ndarray], specs: Sequence[TensorSpec], ctx: TransformContext
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        pos = 0
        for s in specs:
            if s.dtype.kind != "f":
                out.append(wire[pos])
                pos += 1
                continue
            signs, scale = wire[pos], wire[pos + 1]
            pos += 2
            if scale[0] < 0 or np.abs(signs).max(initial=0) > 1:
                raise InvalidUpdateError("decode", "signs must be -1, 0 or 1, the scale >= 0")
            out.append((signs * (scale[0] * self.damping)).astype(s.dtype))
        return out
