"""The aggregation kind: combine client updates into new global weights.

Two families share :class:`BaseAggregation`:

* :class:`StreamingAggregation` (FedAvg and its server-optimiser variants) folds updates into one
  model's worth of accumulators, chunk by chunk (:meth:`~StreamingAggregation.begin_update`,
  :meth:`~StreamingAggregation.accumulate_chunk`, :meth:`~StreamingAggregation.end_update`), so
  its memory does not grow with the number of clients.
* :class:`AllAtOnceAggregation` (coordinate median, trimmed mean, Krum) needs every update of the
  round together; it reads them block by block through :class:`UpdateSource` objects (arrays in
  memory, or the aggregation server's spool files), so it holds one block per client, not one
  model per client.

Both accept whole updates (:meth:`BaseAggregation.accumulate`) and update sources
(:meth:`BaseAggregation.add_update`); a streaming aggregator given sources folds them in at
:meth:`~BaseAggregation.finish` block by block across all sources, which keeps the accumulator
block in cache (faster than one pass per update) and fixes the order of the sums (results do
not depend on arrival order).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from sedna_core.algorithms._base import Algorithm
from sedna_core.errors import InvalidUpdateError

__all__ = [
    "AllAtOnceAggregation",
    "ArrayUpdate",
    "BaseAggregation",
    "InvalidUpdateError",
    "StreamingAggregation",
    "TensorSpec",
    "UpdateSource",
    "check_update",
    "iter_blocks",
    "read_block",
    "specs_of",
]

#: elements per block when aggregators walk tensors (1 MiB of float32: stays in L2 cache)
BLOCK_ELEMENTS = 1 << 18
#: elements per sub-block when a streaming aggregator folds sources: a float64 accumulator and
#: a float64 widening buffer of this size (256 KiB each) plus the input slice fit in a 1 MiB L2
FOLD_ELEMENTS = 1 << 15


class TensorSpec(tuple[str | None, np.dtype[Any], tuple[int, ...]]):
    """(name, dtype, shape) of one tensor of the global model; the name may be None.

    Parameters
    ----------
    name
        The tensor's name (a layer's parameter name), or None.
    dtype
        Anything :class:`numpy.dtype` accepts.
    shape
        The tensor's shape.
    """

    __slots__ = ()

    def __new__(cls, name: str | None, dtype: Any, shape: Sequence[int]) -> TensorSpec:
        return super().__new__(cls, (name, np.dtype(dtype), tuple(int(d) for d in shape)))

    @property
    def name(self) -> str | None:
        """The tensor's name, or None."""
        return self[0]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The tensor's dtype."""
        return self[1]

    @property
    def shape(self) -> tuple[int, ...]:
        """The tensor's shape."""
        return self[2]

    @property
    def size(self) -> int:
        """The number of elements."""
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """The number of bytes of its elements."""
        return self.size * self.dtype.itemsize


def specs_of(weights: Sequence[np.ndarray], names: Sequence[str] | None = None) -> list[TensorSpec]:
    """The :class:`TensorSpec` of each array of ``weights`` (with ``names`` when given).

    Parameters
    ----------
    weights
        The arrays of a model.
    names
        One name per array, or None.

    Returns
    -------
    list of TensorSpec
        One spec per array, in order.
    """
    if names is not None and len(names) != len(weights):
        raise ValueError(f"{len(names)} names for {len(weights)} tensors")
    return [
        TensorSpec(None if names is None else names[i], w.dtype, w.shape)
        for i, w in enumerate(weights)
    ]


def check_update(
    update: Sequence[np.ndarray], reference: Sequence[TensorSpec], *, finite: bool = True
) -> list[np.ndarray]:
    """Check a whole update against the global model's specs; returns it as arrays.

    Parameters
    ----------
    update
        One client's weights: a sequence of arrays.
    reference
        The global model's specs (:func:`specs_of`).
    finite
        Also refuse NaN and infinite values.

    Returns
    -------
    list of numpy.ndarray
        The update's tensors as arrays, in order.

    Raises
    ------
    InvalidUpdateError
        Wrong tensor count, dtype or shape, or (``finite``) a NaN or infinite value.
    """
    if isinstance(update, Mapping) or not isinstance(update, Sequence):
        raise InvalidUpdateError(
            "malformed", f"an update is a list of arrays, got {type(update).__name__}"
        )
    if len(update) != len(reference):
        raise InvalidUpdateError(
            "count", f"update has {len(update)} tensors, the global model has {len(reference)}"
        )
    out = []
    for i, (value, spec) in enumerate(zip(update, reference, strict=True)):
        arr = np.asarray(value)
        if arr.dtype != spec.dtype:
            raise InvalidUpdateError(
                "dtype", f"tensor {i}: dtype {arr.dtype}, the global model has {spec.dtype}"
            )
        if arr.shape != spec.shape:
            raise InvalidUpdateError(
                "shape", f"tensor {i}: shape {arr.shape}, the global model has {spec.shape}"
            )
        if finite and not all_finite(arr):
            raise InvalidUpdateError("nonfinite", f"tensor {i} holds NaN or infinite values")
        out.append(arr)
    return out


def all_finite(values: np.ndarray) -> bool:
    """Whether ``values`` holds no NaN or infinity (integers always do)."""
    if values.dtype.kind not in "fc" or values.size == 0:
        return True
    # A sum is one fast pass without a temporary; NaN and inf propagate into it. Only when
    # it is not finite (or overflowed on huge values) pay for the exact element test.
    with np.errstate(over="ignore", invalid="ignore"):
        total = values.sum()
    return bool(np.isfinite(total)) or bool(np.isfinite(values).all())


def check_num_samples(num_samples: Any, maximum: int = (1 << 53) - 1) -> int:
    """``num_samples`` as an int in ``[1, maximum]``, else :class:`InvalidUpdateError`.

    The aggregation server passes its ``max_num_samples`` bound: one client claiming an
    absurd count would otherwise own the weighted average.
    """
    if isinstance(num_samples, bool) or not isinstance(num_samples, int | np.integer):
        raise InvalidUpdateError(
            "num_samples", f"num_samples must be an integer, got {type(num_samples).__name__}"
        )
    if int(num_samples) <= 0:
        raise InvalidUpdateError(
            "num_samples", f"num_samples must be a positive integer, got {num_samples}"
        )
    if int(num_samples) > maximum:
        raise InvalidUpdateError(
            "num_samples",
            f"num_samples {num_samples} is above the server's limit {maximum} "
            "(max_num_samples, AGG_MAX_NUM_SAMPLES)",
        )
    return int(num_samples)


@runtime_checkable
class UpdateSource(Protocol):
    """One client's complete, validated update, readable piece by piece.

    ``num_samples`` is the number of samples the client trained on.
    """

    num_samples: int

    def read(
        self, index: int, start: int, stop: int, out: np.ndarray | None = None
    ) -> np.ndarray:
        """Elements ``[start, stop)`` of tensor ``index``, flattened in C order.

        Parameters
        ----------
        index
            The tensor's position in the model.
        start, stop
            The element range.
        out
            A 1-D array of the tensor's dtype and ``stop - start`` elements that a source
            which does not hold arrays writes into.

        Returns
        -------
        numpy.ndarray
            A view where the source holds arrays, else ``out`` filled.
        """
        ...


class ArrayUpdate:
    """An :class:`UpdateSource` over arrays in memory.

    Parameters
    ----------
    weights
        The client's arrays (made C-contiguous, not copied when they already are).
    num_samples
        The number of samples the client trained on.
    """

    def __init__(self, weights: Sequence[np.ndarray], num_samples: int) -> None:
        self.weights = [np.ascontiguousarray(w) for w in weights]
        self.num_samples = num_samples

    def read(self, index: int, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """A view of elements ``[start, stop)`` of tensor ``index`` (``out`` is not needed)."""
        return self.weights[index].reshape(-1)[start:stop]


def iter_blocks(
    specs: Sequence[TensorSpec], block: int = BLOCK_ELEMENTS
) -> Iterator[tuple[int, int, int]]:
    """Element ranges covering every tensor of ``specs`` in blocks of at most ``block``.

    Parameters
    ----------
    specs
        The global model's specs.
    block
        The most elements per range.

    Returns
    -------
    Iterator of tuple
        ``(tensor index, start, stop)`` in model order.
    """
    for index, spec in enumerate(specs):
        size = spec.size
        for start in range(0, size, block):
            yield index, start, min(start + block, size)


def read_block(
    updates: Sequence[UpdateSource],
    index: int,
    start: int,
    stop: int,
    out: np.ndarray,
) -> np.ndarray:
    """Elements ``[start, stop)`` of tensor ``index`` of every update, stacked as rows of ``out``.

    Parameters
    ----------
    updates
        The round's update sources.
    index, start, stop
        The tensor and the element range (from :func:`iter_blocks`).
    out
        A 2-D array of the tensor's dtype with at least ``len(updates)`` rows and
        ``stop - start`` columns.

    Returns
    -------
    numpy.ndarray
        The filled ``(len(updates), stop - start)`` view of ``out``.
    """
    rows = out[: len(updates), : stop - start]
    for k, source in enumerate(updates):
        got = source.read(index, start, stop, rows[k])
        if got is not rows[k]:
            rows[k] = got
    return rows


class BaseAggregation(Algorithm, abc.ABC):
    """An aggregation strategy, used round by round.

    A round: :meth:`begin_round` with the current global weights, then each client's update
    (:meth:`accumulate` for arrays in memory, :meth:`add_update` for an :class:`UpdateSource`
    that stays readable until :meth:`finish`), then :meth:`finish` for the new global weights.
    Updates must already fit the global model (see :func:`check_update`); the aggregation
    server checks them before they get here. Server-side state that outlives a round (momentum,
    optimiser moments) is in :meth:`state_dict` so that checkpoints can restore it.
    """

    kind: ClassVar[str] = "aggregation"
    #: True when the strategy needs every update of a round at once (median, Krum)
    needs_all_updates: ClassVar[bool] = False

    @abc.abstractmethod
    def begin_round(self, global_weights: Sequence[np.ndarray]) -> None:
        """Start a round from ``global_weights``, the current model (not modified, not copied).

        Parameters
        ----------
        global_weights
            The global model's arrays.
        """

    @abc.abstractmethod
    def accumulate(self, update: Sequence[np.ndarray], num_samples: int) -> None:
        """Add one client's weights.

        Parameters
        ----------
        update
            The client's arrays, shaped like the global weights (never modified).
        num_samples
            The number of samples it trained on.
        """

    @abc.abstractmethod
    def add_update(self, source: UpdateSource) -> None:
        """Add one client's update as a source.

        Parameters
        ----------
        source
            The update, readable until :meth:`finish` returns.
        """

    @abc.abstractmethod
    def finish(self) -> list[np.ndarray]:
        """Close the round.

        Returns
        -------
        list of numpy.ndarray
            The new global weights (the old ones if no update came).
        """

    @property
    def num_updates(self) -> int:
        """The number of updates added in the current round."""
        return 0

    def client_config(self) -> dict[str, Any]:
        """The settings sent to clients with every training round (FedProx's ``proximal_mu``).

        Returns
        -------
        dict
            Keyword arguments for the clients' ``train``; empty by default.
        """
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """The server-side state to checkpoint (empty for stateless strategies).

        Returns
        -------
        dict
            Name -> array (momentum, optimiser moments...).
        """
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state
            A :meth:`state_dict` output.
        """
        if state:
            raise ValueError(f"{type(self).__name__} keeps no state, got {sorted(state)}")

    def aggregate(
        self,
        global_weights: Sequence[np.ndarray],
        updates: Iterable[tuple[Sequence[np.ndarray], int]],
    ) -> list[np.ndarray]:
        """One whole round.

        Parameters
        ----------
        global_weights
            The current global model.
        updates
            ``(weights, num_samples)`` pairs, one per client.

        Returns
        -------
        list of numpy.ndarray
            The new global weights.
        """
        self.begin_round(global_weights)
        for weights, num_samples in updates:
            self.accumulate(weights, num_samples)
        return self.finish()


class StreamingAggregation(BaseAggregation):
    """Folds each update into one model's worth of accumulators as its chunks arrive.

    The accumulators hold the sample-weighted sum in float64 (complex128 for complex
    tensors) whatever the model's dtype: finite inputs can then never overflow the sum (a
    float32 value near its maximum times 2**53 samples is still far inside float64's range),
    and the result is cast back to the model's dtype at the end. :meth:`finish` divides by
    the total sample count and hands the average to :meth:`server_update`, which FedAvg
    returns as is and server optimisers (FedAvgM, FedAdam...) turn into a step from the
    global weights.
    """

    needs_all_updates: ClassVar[bool] = False

    def __init__(self) -> None:
        self._global: list[np.ndarray] | None = None
        self._specs: list[TensorSpec] = []
        self._acc: list[np.ndarray] = []
        self._flat: list[np.ndarray] = []
        self._sources: list[UpdateSource] = []
        self._weight: int | None = None
        self._total = 0
        self._count = 0

    # -- a round ------------------------------------------------------------------------
    def begin_round(self, global_weights: Sequence[np.ndarray]) -> None:
        self._global = [np.asarray(w) for w in global_weights]
        self._specs = specs_of(self._global)
        self._acc = [np.zeros(w.shape, dtype=_acc_dtype(w.dtype)) for w in self._global]
        self._flat = [a.reshape(-1) for a in self._acc]
        self._sources = []
        self._weight = None
        self._total = 0
        self._count = 0

    @property
    def num_updates(self) -> int:
        return self._count + len(self._sources)

    def begin_update(self, num_samples: int) -> None:
        """Start folding in one update.

        Parameters
        ----------
        num_samples
            The number of samples the client trained on (its weight in the average).
        """
        self._require_round()
        if self._weight is not None:
            raise RuntimeError("begin_update called twice without end_update")
        self._weight = check_num_samples(num_samples)

    def accumulate_chunk(self, index: int, offset: int, values: np.ndarray) -> None:
        """Add a chunk of the update begun by :meth:`begin_update`.

        Parameters
        ----------
        index
            The tensor's position in the model.
        offset
            The chunk's first element in the flattened tensor.
        values
            Elements ``[offset, offset + len(values))``, flattened in C order.
        """
        if self._weight is None:
            raise RuntimeError("accumulate_chunk called outside begin_update/end_update")
        target = self._flat[index][offset : offset + values.size]
        if target.size != values.size:
            raise InvalidUpdateError(
                "size", f"tensor {index}: elements past its end (offset {offset})"
            )
        _axpy(target, values, self._weight)

    def end_update(self) -> None:
        """Finish the update started by :meth:`begin_update`."""
        if self._weight is None:
            raise RuntimeError("end_update called without begin_update")
        self._total += self._weight
        self._count += 1
        self._weight = None

    def accumulate(self, update: Sequence[np.ndarray], num_samples: int) -> None:
        arrays = check_update(update, self._require_round(), finite=False)
        self.begin_update(num_samples)
        for i, arr in enumerate(arrays):
            self.accumulate_chunk(i, 0, np.ascontiguousarray(arr).reshape(-1))
        self.end_update()

    def add_update(self, source: UpdateSource) -> None:
        self._require_round()
        check_num_samples(source.num_samples)
        self._sources.append(source)

    def finish(self) -> list[np.ndarray]:
        self._require_round()
        if self._weight is not None:
            raise RuntimeError("finish called in the middle of an update (no end_update)")
        assert self._global is not None
        if self._sources and type(self).server_update is StreamingAggregation.server_update:
            result = self._fold_average()
            self._global, self._acc, self._flat = None, [], []
            return result
        self._fold_sources()
        if self._count == 0:
            result = [w.copy() for w in self._global]
        else:
            for acc in self._acc:
                np.divide(acc, self._total, out=acc)
            result = self.server_update(self._global, self._acc)
            result = [_cast_like(r, g) for r, g in zip(result, self._global, strict=True)]
        self._global, self._acc, self._flat = None, [], []
        return result

    def server_update(
        self, global_weights: Sequence[np.ndarray], average: list[np.ndarray]
    ) -> list[np.ndarray]:
        """The new global weights from the old ones and this round's average.

        Parameters
        ----------
        global_weights
            The global model before the round.
        average
            The sample-weighted average of the updates; it may be modified and returned (it
            is this round's scratch).

        Returns
        -------
        list of numpy.ndarray
            The new global weights (FedAvg: ``average`` itself).
        """
        return average

    # -- helpers ------------------------------------------------------------------------
    def _require_round(self) -> list[TensorSpec]:
        if self._global is None:
            raise RuntimeError(f"{type(self).__name__}: call begin_round first")
        return self._specs

    def _fold_sources(self) -> None:
        # Block-major: each accumulator block stays in cache while every update adds to it.
        sources, self._sources = self._sources, []
        if not sources:
            return
        buffers: dict[np.dtype[Any], np.ndarray] = {}
        weights = [check_num_samples(s.num_samples) for s in sources]
        for index, start, stop in _fold_ranges(self._specs):
            spec = self._specs[index]
            target = self._flat[index][start:stop]
            out = _buffer(buffers, spec.dtype, stop - start)
            wide = None
            if target.dtype != spec.dtype:
                wide = _buffer(buffers, target.dtype, stop - start)
            for source, weight in zip(sources, weights, strict=True):
                values = source.read(index, start, stop, out)
                if wide is not None:  # widen in cache, then one fused BLAS axpy
                    np.copyto(wide, values, casting="unsafe")
                    values = wide
                _axpy(target, values, weight)
        self._total += sum(weights)
        self._count += len(sources)

    def _fold_average(self) -> list[np.ndarray]:
        """The round's average when :meth:`server_update` is the identity (FedAvg), in one pass.

        Same arithmetic, in the same order, as :meth:`_fold_sources` followed by the division
        and the cast in :meth:`finish` (bit-identical results), but each sub-block of the sum
        lives in a small float64 scratch that stays in cache and is divided and cast straight
        into the result: the model-sized float64 accumulators are never written or re-read,
        which would otherwise triple the memory traffic of a float32 round.
        """
        assert self._global is not None
        sources, self._sources = self._sources, []
        weights = [check_num_samples(s.num_samples) for s in sources]
        total = self._total + sum(weights)
        partial = self._count > 0  # updates folded chunk by chunk are already in self._acc
        result = [np.empty(g.shape, dtype=g.dtype) for g in self._global]
        outs = [r.reshape(-1) for r in result]
        sums: dict[np.dtype[Any], np.ndarray] = {}
        inputs: dict[np.dtype[Any], np.ndarray] = {}
        wides: dict[np.dtype[Any], np.ndarray] = {}
        for index, start, stop in _fold_ranges(self._specs):
            spec, n = self._specs[index], stop - start
            flat = self._flat[index]
            acc = _buffer(sums, flat.dtype, n)
            if partial:
                np.copyto(acc, flat[start:stop])
            else:
                acc.fill(0)
            inp = _buffer(inputs, spec.dtype, n)
            wide = _buffer(wides, acc.dtype, n) if acc.dtype != spec.dtype else None
            for source, weight in zip(sources, weights, strict=True):
                values = source.read(index, start, stop, inp)
                if wide is not None:  # widen in cache, then one fused BLAS axpy
                    np.copyto(wide, values, casting="unsafe")
                    values = wide
                _axpy(acc, values, weight)
            np.divide(acc, total, out=acc)
            if spec.dtype.kind in "iub" and spec.dtype != acc.dtype:  # as _cast_like
                np.rint(acc, out=acc)
            np.copyto(outs[index][start:stop], acc, casting="unsafe")
        self._total = total
        self._count += len(sources)
        return result


class AllAtOnceAggregation(BaseAggregation):
    """A strategy that needs every update of the round together (robust aggregation).

    Subclasses implement :meth:`combine`; :func:`iter_blocks` and :func:`read_block` walk the
    updates a block of coordinates at a time so memory stays at one block per client.
    """

    needs_all_updates: ClassVar[bool] = True

    def __init__(self) -> None:
        self._global: list[np.ndarray] | None = None
        self._specs: list[TensorSpec] = []
        self._updates: list[UpdateSource] = []

    def begin_round(self, global_weights: Sequence[np.ndarray]) -> None:
        self._global = [np.asarray(w) for w in global_weights]
        self._specs = specs_of(self._global)
        self._updates = []

    @property
    def num_updates(self) -> int:
        return len(self._updates)

    def accumulate(self, update: Sequence[np.ndarray], num_samples: int) -> None:
        arrays = check_update(update, self._require_round(), finite=False)
        self._updates.append(ArrayUpdate(arrays, check_num_samples(num_samples)))

    def add_update(self, source: UpdateSource) -> None:
        self._require_round()
        check_num_samples(source.num_samples)
        self._updates.append(source)

    def finish(self) -> list[np.ndarray]:
        specs = self._require_round()
        assert self._global is not None
        updates, self._updates = self._updates, []
        if updates:
            result = self.combine(self._global, specs, updates)
            result = [_cast_like(r, g) for r, g in zip(result, self._global, strict=True)]
        else:
            result = [w.copy() for w in self._global]
        self._global = None
        return result

    @abc.abstractmethod
    def combine(
        self,
        global_weights: Sequence[np.ndarray],
        specs: Sequence[TensorSpec],
        updates: Sequence[UpdateSource],
    ) -> list[np.ndarray]:
        """The new global weights from every update of the round.

        Parameters
        ----------
        global_weights
            The global model before the round.
        specs
            The :class:`TensorSpec` of each tensor of the global model.
        updates
            The round's updates (at least one), read block by block with
            :func:`iter_blocks` and :func:`read_block`.

        Returns
        -------
        list of numpy.ndarray
            One array per tensor, shaped like the global weights (cast to their dtypes).
        """

    def _require_round(self) -> list[TensorSpec]:
        if self._global is None:
            raise RuntimeError(f"{type(self).__name__}: call begin_round first")
        return self._specs


# -- kernels ------------------------------------------------------------------------------


def _acc_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    # float64 for every real dtype: no accepted (finite) input can overflow the weighted sum
    return np.dtype(np.complex128) if dtype.kind == "c" else np.dtype(np.float64)


def _fold_ranges(specs: Sequence[TensorSpec]) -> Iterator[tuple[int, int, int]]:
    """:func:`iter_blocks` in :data:`FOLD_ELEMENTS` sub-blocks for tensors that are widened to
    the accumulator's dtype, in :data:`BLOCK_ELEMENTS` blocks for those already in it (no
    widening buffer to keep in cache; and BLAS's results there depend on where a block ends,
    so the blocks stay where they were)."""
    for index, spec in enumerate(specs):
        wide = spec.dtype != _acc_dtype(spec.dtype)
        block = FOLD_ELEMENTS if wide else BLOCK_ELEMENTS
        for start in range(0, spec.size, block):
            yield index, start, min(start + block, spec.size)


def _buffer(buffers: dict[np.dtype[Any], np.ndarray], dtype: np.dtype[Any], n: int) -> np.ndarray:
    """A reused 1-D scratch block of ``dtype`` with ``n`` elements."""
    buf = buffers.get(dtype)
    if buf is None:
        buf = buffers[dtype] = np.empty(BLOCK_ELEMENTS, dtype=dtype)
    return buf[:n]


def _cast_like(result: np.ndarray, reference: np.ndarray) -> np.ndarray:
    if result.dtype == reference.dtype:
        return result
    if reference.dtype.kind in "iub":
        return np.rint(result).astype(reference.dtype)
    return result.astype(reference.dtype)


_BLAS: dict[np.dtype[Any], Any] = {}


def _axpy(target: np.ndarray, values: np.ndarray, weight: float) -> None:
    """``target += weight * values`` in place, fused through BLAS where the dtypes allow."""
    if values.dtype == target.dtype and target.dtype.char in "fd" and values.flags.c_contiguous:
        fn = _blas_axpy(target.dtype)
        if fn is not None and target.size:
            out = fn(values, target, a=weight)
            if out is not target and not np.shares_memory(out, target):  # pragma: no cover
                target[...] = out
            return
    target += values.astype(target.dtype, copy=False) * target.dtype.type(weight)


def _blas_axpy(dtype: np.dtype[Any]) -> Any:
    if dtype not in _BLAS:
        try:
            from scipy.linalg import blas
        except ImportError:  # pragma: no cover - scipy comes with scikit-learn
            _BLAS[dtype] = None
        else:
            _BLAS[dtype] = blas.saxpy if dtype == np.float32 else blas.daxpy
    return _BLAS[dtype]
