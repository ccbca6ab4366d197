"""Task models answered together: many small task groups of linear classifiers scored in one
vectorised pass, with the same predictions as each model's own ``predict``.

Why: with many tasks, each task group of a batch holds a few rows, and one ``predict`` per group
spends almost all its time in the framework's per-call input validation (~0.1-0.3 ms a call
for scikit-learn), not in the arithmetic. Backends declare when their ``predict`` is a linear
classifier's rule through the optional ``linear_decision(n_features)`` capability
(:class:`~sedna_core.algorithms.backend.LinearDecision`: the class with the largest
``x @ coef.T + intercept``, or the sign of that score for two classes); the core knows no
backend or framework by name. The decisions of every task model that has one are gathered on
each call (the backend is asked again only when a watched object was replaced, per knowledge
version), and the rows of all small groups are scored together, each row with its own model's
coefficients, read afresh on every pass. Any other model, and large groups (where one call's
validation is amortised), go through the backend's ``predict`` as before.

Same predictions, not just close ones: computed in any summation order (BLAS blocking, FMA or
not), a score ``s = sum_j x_j w_j + b`` of ``k`` features is within ``gamma(k+1) * A`` of the
exact one, where ``A = sum_j |x_j w_j| + |b|`` and ``gamma(n) = n u / (1 - n u)`` with the unit
roundoff ``u`` (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1; plus ``k + 1``
halves of the smallest subnormal for products that underflow). So the backend's score and ours
differ by at most ``2 gamma A``; a row whose deciding margin (``|s|`` for two classes, the gap
between the two largest scores otherwise) exceeds twice that bound, with a further factor 2 for
the rounding of ``A`` itself, is decided identically. A group with any row inside the margin is
answered by its model's own ``predict`` on the group's rows, exactly as the per-group path would.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from sedna_core.algorithms.backend import LinearDecision
from sedna_core.errors import BackendError

__all__ = ["LinearStacks", "finite_matrix"]

#: groups with at least this many rows go through their model's own ``predict``: the per-call
#: validation is amortised there, and one BLAS call beats gathering coefficients row by row
LARGE_GROUP = 256

#: rows scored per gathered chunk (bounds the (rows, classes, features) gather to ~8 MB)
_CHUNK_VALUES = 1 << 20

_UNIT_ROUNDOFF = float(np.finfo(np.float64).eps) / 2
_SUBNORMAL = float(np.finfo(np.float64).smallest_subnormal)


def finite_matrix(x: Any) -> np.ndarray | None:
    """``x`` as a float64 matrix when it is an input the ``LinearDecision`` contract covers: a
    dense 2-D numpy array of finite numbers that a model scores in float64 whatever its
    coefficients' float type (float64, or 32/64-bit integers below 2**53, converted exactly);
    else ``None``."""
    if not isinstance(x, np.ndarray) or x.ndim != 2 or x.dtype.kind not in "iuf":
        return None
    if np.result_type(x.dtype, np.float32) != np.float64:
        return None  # float32/16 or small integers: a model may score in float32
    if x.dtype.kind in "iu" and x.size and (x.max() >= 2**53 or x.min() <= -(2**53)):
        return None  # not exactly representable: leave it to the model
    out = np.asarray(x, dtype=np.float64)
    if not np.isfinite(out).all():
        return None  # frameworks raise their own errors on these: let them
    return out


def _linear_decision(backend: Any, n_features: int) -> LinearDecision | None:
    """The backend's declared linear decision on ``n_features`` features, else ``None``."""
    ask = getattr(backend, "linear_decision", None)
    if not callable(ask):
        return None  # a backend without the capability: its own predict answers
    found = ask(n_features)
    if found is None:
        return None
    if not isinstance(found, LinearDecision):
        raise BackendError(
            f"{type(backend).__qualname__}.linear_decision returned "
            f"{type(found).__qualname__}; return a sedna_core.backends.LinearDecision or None"
        )
    return found if found.coef.shape[1] == n_features else None


@dataclass(eq=False)
class _Member:
    """A group's model that the stacked pass answers for, with its declared decision."""

    backend: Any
    decision: LinearDecision
    kind: tuple[int, int]  # (rows of coef, features): models of one kind are stacked together

    @property
    def classes(self) -> np.ndarray:
        return self.decision.classes

    def current(self, backend: Any) -> bool:
        """Whether ``backend`` still holds the model that was checked (its values are read
        afresh on every pass, so a model updated in place is scored as it is now)."""
        return backend is self.backend and self.decision.current()


class LinearStacks:
    """Which of one knowledge version's task models the stacked pass answers for, checked as
    groups are first seen (models still load lazily, one group at a time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: dict[int, _Member] = {}  # group index -> its linear model
        # group index -> (backend, model, features) that answered None: predict answers it
        self._others: dict[int, tuple[Any, Any, int]] = {}

    def member(self, group: int, backend: Any, n_features: int) -> _Member | None:
        """``group``'s entry, checked again when its model changed; ``None`` when it is not a
        linear classifier this pass can answer for (a ``None`` is remembered while the backend
        holds the same ``model``)."""
        known = self._members.get(group)
        if known is not None and known.current(backend) and known.kind[1] == n_features:
            return known
        other = self._others.get(group)
        if (
            other is not None
            and other[0] is backend
            and other[1] is getattr(backend, "model", None)
            and other[2] == n_features
        ):
            return None
        with self._lock:
            return self._add(group, backend, n_features)

    def _add(self, group: int, backend: Any, n_features: int) -> _Member | None:
        decision = _linear_decision(backend, n_features)
        self._members.pop(group, None)
        if decision is None:
            self._others[group] = (backend, getattr(backend, "model", None), n_features)
            return None
        self._others.pop(group, None)
        coef = decision.coef
        found = _Member(backend, decision, (int(coef.shape[0]), int(coef.shape[1])))
        self._members[group] = found
        return found


def score_small_groups(
    x: np.ndarray,
    groups: list[tuple[int, np.ndarray]],
    members: list[_Member | None],
) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Class indices of the rows of every group whose member is not None, one vectorised pass per
    kind of model.

    Returns ``(indices, decided)``: ``indices[i]`` the per-row class index of group ``i`` (None
    for groups not scored here) and ``decided[i]`` whether every row of group ``i`` cleared the
    margin (a group that did not must be answered by its model's own ``predict``).
    """
    indices: list[np.ndarray | None] = [None] * len(groups)
    decided = np.zeros(len(groups), dtype=bool)
    by_kind: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(members):
        if m is not None:
            by_kind.setdefault(m.kind, []).append(i)
    for (n_coef, _), picked in by_kind.items():
        decisions = [members[i].decision for i in picked]  # type: ignore[union-attr]
        # the coefficients as they are now (read on every pass: never a stale copy)
        weights = np.stack([d.coef for d in decisions]).astype(np.float64, copy=False)
        intercepts = _stacked_intercepts([d.intercept for d in decisions], n_coef)
        sizes = np.fromiter((len(groups[i][1]) for i in picked), dtype=np.intp, count=len(picked))
        rows = np.concatenate([groups[i][1] for i in picked])
        slots = np.repeat(np.arange(len(picked)), sizes)
        idx, ok = _score(x, rows, slots, weights, intercepts)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        group_ok = np.logical_and.reduceat(ok, starts) if len(ok) else np.ones(0, bool)
        for j, i in enumerate(picked):
            a = starts[j]
            indices[i] = idx[a : a + sizes[j]]
            decided[i] = group_ok[j]
    return indices, decided


def _stacked_intercepts(raw: list[Any], n_coef: int) -> np.ndarray:
    """``(models, n_coef)`` intercepts from arrays of ``n_coef`` or one value, or scalars."""
    try:
        arr = np.array(raw, dtype=np.float64)  # one C-level pass when all have one shape
    except ValueError:  # mixed shapes: broadcast one by one
        arr = None
    if arr is not None and arr.shape == (len(raw), n_coef):
        return arr
    if arr is not None and arr.size == len(raw):  # one value each (scalars or size-1 arrays)
        return np.repeat(arr.reshape(-1, 1), n_coef, axis=1)
    return np.stack(
        [np.broadcast_to(np.asarray(b, dtype=np.float64).reshape(-1), (n_coef,)) for b in raw]
    )


def _score(
    x: np.ndarray,
    rows: np.ndarray,
    slots: np.ndarray,
    weights: np.ndarray,
    intercepts: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the index into its model's ``classes`` and whether the margin cleared the
    rounding bound (see the module docstring)."""
    n_classes, n_features = weights.shape[1], weights.shape[2]
    gamma = (n_features + 1) * _UNIT_ROUNDOFF / (1 - (n_features + 1) * _UNIT_ROUNDOFF)
    # products that underflow err by up to half the smallest subnormal each, absolutely
    floor = (n_features + 1) * _SUBNORMAL
    idx = np.empty(len(rows), dtype=np.intp)
    ok = np.empty(len(rows), dtype=bool)
    step = max(1, _CHUNK_VALUES // max(1, n_classes * n_features))
    for start in range(0, len(rows), step):
        part = slice(start, start + step)
        xs = x[rows[part]]
        w = weights[slots[part]]
        b = intercepts[slots[part]]
        scores = np.einsum("nk,nck->nc", xs, w) + b
        bound = np.einsum("nk,nck->nc", np.abs(xs), np.abs(w)) + np.abs(b)
        if n_classes == 1:  # two classes: the sign of the one score
            s = scores[:, 0]
            idx[part] = s > 0
            ok[part] = np.abs(s) > 4 * (gamma * bound[:, 0] + floor)
        else:
            top = np.argmax(scores, axis=1)
            two = np.partition(scores, n_classes - 2, axis=1)[:, -2:]
            idx[part] = top
            ok[part] = (two[:, 1] - two[:, 0]) > 8 * (gamma * bound.max(axis=1) + floor)
    return idx, ok
