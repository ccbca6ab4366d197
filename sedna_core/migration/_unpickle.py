"""A restricted reader for the ``index.pkl`` of a *trusted, local* Sedna knowledge base.

Sedna wrote its task index with ``joblib.dump`` (a pickle with numpy arrays appended in
joblib's layout). This reader never imports or calls what the pickle names: Sedna's task
classes become :mod:`~sedna_core.migration._standins`, numpy arrays are rebuilt by numpy's
own reconstructors, a few plain builtins are allowed, and every other name becomes an
:class:`~sedna_core.migration._standins.Opaque` record. It still parses an untrusted format
with the Python pickle machine: run it only on files you trust.
"""

from __future__ import annotations

import collections
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from sedna_core.errors import MigrationError
from sedna_core.migration._standins import DataSource, Model, Opaque, StandIn, Task, TaskGroup

__all__ = ["load_index"]

_TASK_CLASSES = {"Task": Task, "TaskGroup": TaskGroup, "Model": Model}
_DATA_CLASSES = {"BaseDataSource", "TxtDataParse", "CSVDataParse", "JSONDataParse"}
_NUMPY = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_BUILTINS = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "complex"): complex,
    ("builtins", "slice"): slice,
    ("builtins", "bytearray"): bytearray,
    ("collections", "OrderedDict"): collections.OrderedDict,
}
_JOBLIB_WRAPPER = ("joblib.numpy_pickle", "NumpyArrayWrapper")
_RECONSTRUCTOR = ("copyreg", "_reconstructor")
_BUFFER = 16 * 1024 * 1024


class _ArrayWrapper(Opaque):
    """joblib's ``NumpyArrayWrapper``: the array's bytes follow it in the file."""


class _Reader(pickle._Unpickler):  # the pure-Python machine: joblib's arrays need its BUILD
    def __init__(self, fh: BinaryIO) -> None:
        super().__init__(fh)
        self._fh = fh
        self.opaque: set[str] = set()

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY:
            return super().find_class(module, name)
        if (module, name) in _BUILTINS:
            return _BUILTINS[(module, name)]
        if (module, name) == _RECONSTRUCTOR:  # protocols 0 and 1 build objects through it
            return _reconstructor
        if (module, name) == _JOBLIB_WRAPPER:
            return _standin(_ArrayWrapper, module, name)
        if module == "sedna" or module.startswith("sedna."):
            if name in _TASK_CLASSES:
                return _standin(_TASK_CLASSES[name], module, name)
            if name in _DATA_CLASSES and module.startswith("sedna.datasources"):
                return _standin(DataSource, module, name)
        self.opaque.add(f"{module}.{name}")
        return _standin(Opaque, module, name)

    def load_build(self) -> None:
        super().load_build()
        top = self.stack[-1]
        if isinstance(top, _ArrayWrapper):
            self.stack[-1] = self._read_array(top)

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]
    dispatch[pickle.BUILD[0]] = load_build

    def _read_array(self, wrapper: _ArrayWrapper) -> np.ndarray:
        dtype = getattr(wrapper, "dtype", None)
        shape = tuple(getattr(wrapper, "shape", ()))
        if not isinstance(dtype, np.dtype):
            raise MigrationError("a joblib array record has no numpy dtype")
        if dtype.hasobject:
            raise MigrationError(
                "a joblib array holds Python objects (dtype=object); they are not read"
            )
        if getattr(wrapper, "numpy_array_alignment_bytes", None) is not None:
            padding = self._fh.read(1)
            if padding and padding[0]:
                self._fh.read(padding[0])
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        data = bytearray()
        remaining = count * dtype.itemsize
        while remaining:
            chunk = self._fh.read(min(remaining, _BUFFER))
            if not chunk:
                raise MigrationError("the index file ends inside a numpy array")
            data += chunk
            remaining -= len(chunk)
        array = np.frombuffer(bytes(data), dtype=dtype, count=count).copy()
        if getattr(wrapper, "order", "C") == "F":
            return array.reshape(shape[::-1]).transpose()
        return array.reshape(shape)


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    """``copyreg._reconstructor`` for stand-ins only (their ``__init__`` runs no code)."""
    if isinstance(cls, type) and issubclass(cls, StandIn):
        return cls.__new__(cls)
    return Opaque(cls, base, state)


def _standin(base: type, module: str, name: str) -> type:
    return type(name, (base,), {"pickled_as": f"{module}.{name}", "__module__": __name__})


def load_index(path: str | Path) -> tuple[Any, list[str]]:
    """The objects of a Sedna ``index.pkl`` and the names that became opaque records."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise MigrationError(f"cannot read {path}: {exc.strerror}") from exc
    if raw[:2] in (b"\x1f\x8b", b"BZ", b"\xfd7") or raw[:4] == b"\x28\xb5\x2f\xfd":
        raise MigrationError(
            f"{path} is compressed (joblib compress=...); decompress it first "
            "(gunzip / unxz / unzstd) and run the import on the plain file"
        )
    reader = _Reader(io.BytesIO(raw))
    try:
        doc = reader.load()
    except MigrationError:
        raise
    except Exception as exc:  # the pickle machine raises many types on malformed input
        raise MigrationError(
            f"{path} is not a pickle this importer can read: {type(exc).__name__}: {exc}"
        ) from exc
    return doc, sorted(reader.opaque)
