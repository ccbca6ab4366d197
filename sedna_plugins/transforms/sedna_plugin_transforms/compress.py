"""Compressed updates: fp16, int8 with stochastic rounding, top-k with error feedback.

Each acts on the floating-point tensors of what it is given (integer tensors, such as top-k's
indices when int8 follows it, pass through unchanged), so they combine: ``["TopK", "Int8"]``
sends the top values quantised. The server decodes each update and then checks it like any
other (shapes, dtypes, finite values, the distance bound) before it is folded in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import BaseUpdateTransform, TensorSpec, TransformContext
from sedna_core.errors import InvalidUpdateError

__all__ = ["FP16", "Int8", "TopK"]


#: values quantised per step of Int8's loop (256 KiB of float32: stays in a core's cache)
_STEP_VALUES = 1 << 16


def _is_float(spec: TensorSpec) -> bool:
    return spec.dtype.kind == "f"


def _rng(ctx: TransformContext, seed: int | None) -> Any:
    """Rounding noise needs no secrecy: the context's generator, else a seeded or fresh one."""
    if ctx.rng is not None:
        return ctx.rng
    return np.random.default_rng(None if seed is None else [seed, ctx.round_number])


class FP16(BaseUpdateTransform):
    """Send floating-point tensors as float16 (half the bytes of float32).

    A value beyond float16's range (65504) becomes infinite, and the server then rejects the
    update as non-finite: deltas are far smaller than that in practice.
    """

    name: ClassVar[str] = "FP16"
    client_side: ClassVar[bool] = True
    packable: ClassVar[bool] = True

    def __init__(self) -> None:
        pass

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        return [TensorSpec(s.name, np.float16, s.shape) if _is_float(s) else s for s in specs]

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        with np.errstate(over="ignore"):
            return [d.astype(np.float16) if d.dtype.kind == "f" else d for d in delta]

    def decode(
        self, wire: list[np.ndarray], specs: Sequence[TensorSpec], ctx: TransformContext
    ) -> list[np.ndarray]:
        return [w.astype(s.dtype) for w, s in zip(wire, specs, strict=True)]


class Int8(BaseUpdateTransform):
    """Send floating-point tensors as int8 with one float32 scale per block of values.

    Each block of ``block`` values is scaled by its largest magnitude over 127 and rounded
    stochastically (up with probability equal to the fraction), so the decoded update is an
    unbiased estimate of the original: errors average out over clients and rounds instead of
    drifting. About 4x fewer bytes than float32.

    Parameters
    ----------
    block
        Values per scale (smaller: more accurate, a little more to send).
    seed
        Seed of the rounding noise (None: fresh entropy each round).
    """

    name: ClassVar[str] = "Int8"
    client_side: ClassVar[bool] = True
    packable: ClassVar[bool] = True

    def __init__(self, block: int = 1024, seed: int | None = None) -> None:
        if not isinstance(block, int) or block < 1:
            raise ValueError(f"block must be a positive integer, got {block!r}")
        self.block = block
        self.seed = seed

    def client_config(self) -> dict[str, Any]:
        return {"block": self.block}

    def _blocks(self, spec: TensorSpec) -> int:
        return max(1, math.ceil(spec.size / self.block))

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        out: list[TensorSpec] = []
        for s in specs:
            if _is_float(s):
                out.append(TensorSpec(s.name, np.int8, s.shape))
                out.append(TensorSpec(None, np.float32, (self._blocks(s),)))
            else:
                out.append(s)
        return out

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        rng = _rng(ctx, self.seed)
        out: list[np.ndarray] = []
        for d in delta:
            if d.dtype.kind != "f":
                out.append(d)
                continue
            q, scale = self._quantise(np.asarray(d).reshape(-1), rng)
            out.append(q.reshape(d.shape))
            out.append(scale)
        return out

    def _quantise(self, flat: np.ndarray, rng: Any) -> tuple[np.ndarray, np.ndarray]:
        """int8 values and block scales of ``flat``, a few hundred blocks at a time: each
        step then works in cache and allocates nothing model-sized (on a 10M-value model,
        whole-array steps spent more time faulting in fresh pages than computing)."""
        nblocks = max(1, math.ceil(flat.size / self.block))
        q = np.empty(flat.size, np.int8)
        scale = np.empty(nblocks, np.float32)
        per = max(1, _STEP_VALUES // self.block)  # blocks per step
        rows = np.empty((per, self.block), np.float32)
        for first in range(0, nblocks, per):
            last = min(first + per, nblocks)
            lo, hi = first * self.block, min(last * self.block, flat.size)
            part = rows[: last - first]
            view = part.reshape(-1)
            view[: hi - lo] = flat[lo:hi]
            view[hi - lo :] = 0  # the last block's padding
            s = np.abs(part).max(axis=1)
            s /= np.float32(127)
            scale[first:last] = s
            s[s == 0] = 1
            part /= s[:, None]
            part += rng.random(part.shape, dtype=np.float32)  # stochastic rounding
            np.floor(part, out=part)
            np.clip(part, -127, 127, out=part)
            q[lo:hi] = view[: hi - lo]
        return q, scale

    def decode(
        self, wire: list[np.ndarray], specs: Sequence[TensorSpec], ctx: TransformContext
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        pos = 0
        for s in specs:
            if not _is_float(s):
                out.append(wire[pos])
                pos += 1
                continue
            q, scale = wire[pos], wire[pos + 1]
            pos += 2
            if np.any(scale < 0):
                raise InvalidUpdateError("decode", "int8 update: a block scale is negative")
            flat_q = q.reshape(-1)
            values = np.empty(s.size, s.dtype)
            full = s.size // self.block  # whole blocks: one multiply per row, in place
            if full:
                rows = values[: full * self.block].reshape(full, self.block)
                np.multiply(
                    flat_q[: full * self.block].reshape(full, self.block),
                    scale[:full, None],
                    out=rows,
                    casting="unsafe",
                )
            if s.size > full * self.block:
                values[full * self.block :] = flat_q[full * self.block :] * scale[full]
            out.append(values.reshape(s.shape))
        return out


class TopK(BaseUpdateTransform):
    """Send only the largest-magnitude ``ratio`` of each tensor's values, with their indices.

    Error feedback: what a client leaves out is kept and added to its next update, so every
    coordinate's change reaches the model eventually (Stich et al. 2018; Karimireddy et al.
    2019). The residual lives in the client's process: a client that restarts starts afresh.

    Parameters
    ----------
    ratio
        Share of each tensor's values sent (at least one value per tensor).
    error_feedback
        Keep and resend what was left out.
    """

    name: ClassVar[str] = "TopK"
    client_side: ClassVar[bool] = True
    packable: ClassVar[bool] = True

    def __init__(self, ratio: float = 0.05, error_feedback: bool = True) -> None:
        if not 0 < ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {ratio!r}")
        self.ratio = ratio
        self.error_feedback = error_feedback
        self._residual: list[np.ndarray] | None = None

    def _k(self, spec: TensorSpec) -> int:
        return min(spec.size, max(1, math.ceil(self.ratio * spec.size)))

    @staticmethod
    def _index_dtype(spec: TensorSpec) -> np.dtype[Any]:
        return np.dtype(np.int32 if spec.size < 2**31 else np.int64)

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        out: list[TensorSpec] = []
        for s in specs:
            if _is_float(s) and s.size > 0:
                k = self._k(s)
                out.append(TensorSpec(None, self._index_dtype(s), (k,)))
                out.append(TensorSpec(s.name, s.dtype, (k,)))
            else:
                out.append(s)
        return out

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        shapes = [(d.shape, d.dtype) for d in delta]
        if self._residual is None or [(r.shape, r.dtype) for r in self._residual] != shapes:
            self._residual = [np.zeros(d.shape, dtype=d.dtype) for d in delta]
        out: list[np.ndarray] = []
        for i, d in enumerate(delta):
            if d.dtype.kind != "f" or d.size == 0:
                out.append(d)
                continue
            acc = (d + self._residual[i]) if self.error_feedback else d
            flat = acc.reshape(-1)
            k = self._k(TensorSpec(None, d.dtype, d.shape))
            if k < flat.size:
                idx = np.argpartition(np.abs(flat), flat.size - k)[flat.size - k :]
            else:
                idx = np.arange(flat.size)
            idx = np.sort(idx).astype(self._index_dtype(TensorSpec(None, d.dtype, d.shape)))
            values = flat[idx].copy()
            if self.error_feedback:
                rest = flat.copy()
                rest[idx] = 0
                self._residual[i] = rest.reshape(d.shape)
            out.append(idx)
            out.append(values)
        return out

    def decode(
        self, wire: list[np.ndarray], specs: Sequence[TensorSpec], ctx: TransformContext
    ) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        pos = 0
        for i, s in enumerate(specs):
            if not (_is_float(s) and s.size > 0):
                out.append(wire[pos])
                pos += 1
                continue
            idx, values = wire[pos], wire[pos + 1]
            pos += 2
            # Strictly increasing indices inside the tensor: in range and each sent once
            if idx.size and (idx[0] < 0 or idx[-1] >= s.size or np.any(np.diff(idx) <= 0)):
                raise InvalidUpdateError(
                    "decode",
                    f"top-k update: tensor {i}'s indices must be strictly increasing within "
                    f"[0, {s.size})",
                )
            dense = np.zeros(s.size, dtype=s.dtype)
            dense[idx] = values
            out.append(dense.reshape(s.shape))
        return out
