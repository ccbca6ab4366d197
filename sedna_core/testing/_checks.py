"""Conformance checks for algorithm classes, in the spirit of scikit-learn's ``check_estimator``.

Every plugin's tests run them::

    @parametrize_with_checks([IBTFilter, ThresholdFilter])
    def test_conformance(algorithm, check):
        check(algorithm)

A class may define two optional classmethods to feed the checks (the public hooks an author
implements; the older spellings ``_conformance_examples`` and ``_conformance_inputs`` are still
read when the public ones are absent):

``conformance_examples(cls) -> list[dict]``
    keyword arguments to build instances (default ``[{}]``: the constructor defaults). A
    backend returns a tiny estimator here, e.g. ``[{"estimator": make_tiny_model}]``.
``conformance_inputs(cls)``
    kind-specific small inputs replacing the defaults below:

    ========================  =================================================================
    kind                      inputs (default)
    ========================  =================================================================
    hard_example_mining       a list of batches; each batch a sequence of per-sample results
                              (default: random probability vectors over 3 classes)
    aggregation               a list of rounds ``(global_weights, [(update, num_samples), ...])``
                              (default: two arrays, three clients)
    backend                   ``(x, y)`` to train on and predict (default: 40 x 4 float32,
                              binary int labels)
    lifelong-learning kinds   a list of calls ``(method_name, args)`` run in order on one
                              instance (no default: the class must define it)
    ========================  =================================================================

A failed check raises ``AssertionError`` naming the class, the check and what to change.
"""

from __future__ import annotations

import collections.abc as cabc
import enum
import functools
import inspect
import math
import pathlib
import tempfile
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from sedna_core.algorithms import KINDS, Algorithm, ArrayUpdate, BaseBackend
from sedna_core.algorithms.backend import LinearDecision
from sedna_core.algorithms.mtl import n_rows

__all__ = ["algorithm_checks", "check_algorithm", "parametrize_with_checks"]

Check = Callable[[type], None]


def algorithm_checks(cls: type) -> list[tuple[str, Check]]:
    """The ``(check name, check)`` pairs that apply to ``cls`` (generic checks, then its kind's)."""
    checks: list[Check] = [
        check_kind_and_name,
        check_not_abstract,
        check_explicit_parameters,
        check_parameters_annotated,
        check_parameters_stored,
        check_string_conversion,
        check_repr,
    ]
    kind = getattr(cls, "kind", "")
    checks += _KIND_CHECKS.get(kind, [check_lifelong_calls] if kind in KINDS else [])
    return [(_name_of(c), c) for c in checks]


def check_algorithm(cls: type, *, plugin_manager: Any = None) -> None:
    """Run every conformance check on ``cls``; the first failure raises ``AssertionError``.

    With ``plugin_manager`` it also checks that ``cls.name`` resolves to ``cls`` there (the
    name is unique among the registered algorithms of its kind).
    """
    for _, check in algorithm_checks(cls):
        check(cls)
    if plugin_manager is not None:
        check_resolves(cls, plugin_manager)


def parametrize_with_checks(classes: Sequence[type]) -> Any:
    """A ``pytest.mark.parametrize`` over ``(algorithm, check)`` for every class and check.

    Test ids read ``<Class>-<check>``, so ``pytest -k check_string_conversion`` works. Names
    must also be unique per kind among ``classes``.
    """
    import pytest

    params, ids = [], []
    for cls in classes:
        unique = functools.partial(_check_unique_among, others=tuple(classes))
        for name, check in [*algorithm_checks(cls), ("check_name_unique", unique)]:
            params.append((cls, check))
            ids.append(f"{cls.__name__}-{name}")
    return pytest.mark.parametrize(("algorithm", "check"), params, ids=ids)


# -- generic checks ------------------------------------------------------------------------


def check_kind_and_name(cls: type) -> None:
    """A known ``kind``, the kind's base class, and a non-empty ``name`` without ``:``."""
    kind = getattr(cls, "kind", "")
    _require(kind in KINDS, cls, f"kind {kind!r} is not one of {sorted(KINDS)}")
    base = KINDS[kind][0]
    _require(isinstance(cls, type) and issubclass(cls, base), cls, f"must subclass {base}")
    name = getattr(cls, "name", "")
    _require(
        isinstance(name, str) and bool(name.strip()),
        cls,
        "needs a non-empty class attribute `name` (what users write, e.g. 'IBT')",
    )
    _require(":" not in name, cls, f"name {name!r} must not contain ':'")
    _require(name == name.strip(), cls, f"name {name!r} has surrounding spaces")


def check_not_abstract(cls: type) -> None:
    """Every abstract method of the kind's interface is implemented."""
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    _require(not missing, cls, f"does not implement {', '.join(missing)}")


def check_explicit_parameters(cls: type) -> None:
    """``__init__`` takes explicit parameters: no ``*args``, ``**kwargs`` or positional-only."""
    for p in _init_params(cls, all_kinds=True):
        _require(
            p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD),
            cls,
            f"__init__ has a {p}-style sink; declare each parameter explicitly so a misspelt "
            "parameter is an error",
        )
        _require(p.kind is not p.POSITIONAL_ONLY, cls, f"parameter {p.name} is positional-only")


def check_parameters_annotated(cls: type) -> None:
    """Every parameter has a type annotation (string values from the environment need it)."""
    for p in _init_params(cls):
        _require(
            p.annotation is not p.empty,
            cls,
            f"parameter {p.name} has no type annotation; strings from environment variables "
            "are converted by it (annotate `Any` to take values as given)",
        )


def check_parameters_stored(cls: type) -> None:
    """Each parameter is stored unchanged as the attribute of the same name (and in get_params)."""
    for kwargs, inst in _instances(cls):
        params = inst.get_params()
        for p in _init_params(cls):
            expected = kwargs.get(p.name, p.default)
            actual = getattr(inst, p.name, _MISSING)
            _require(
                actual is not _MISSING,
                cls,
                f"does not store parameter {p.name} as attribute `{p.name}`",
            )
            _require(
                _same(actual, expected),
                cls,
                f"__init__ changes parameter {p.name}: given {expected!r}, stored {actual!r}; "
                "store parameters as given and derive other state in other attributes",
            )
            _require(p.name in params, cls, f"get_params() lacks {p.name}")


def check_string_conversion(cls: type) -> None:
    """Parameters written as strings (as in ``HEM_PARAMETERS``) convert back to the same values."""
    from sedna_core.plugins import create_algorithm
    from sedna_core.plugins._convert import param_to_string

    types = cls.param_types()  # type: ignore[attr-defined]
    for _, inst in _instances(cls):
        params = inst.get_params()
        written: dict[str, Any] = {}
        for key, value in params.items():
            tp = types.get(key, Any)
            written[key] = (
                param_to_string(value) if tp not in (Any, object) and _stringable(value) else value
            )
        try:
            again = create_algorithm(cls.kind, {"method": cls, "param": written})  # type: ignore[attr-defined]
        except Exception as exc:
            raise AssertionError(
                f"{cls.__qualname__}: building it from string parameters {written!r} failed: {exc}"
            ) from exc
        for key, value in params.items():
            back = getattr(again, key, _MISSING)
            _require(
                _same(back, value),
                cls,
                f"parameter {key}={value!r} written as {written[key]!r} comes back as {back!r}; "
                f"check its annotation ({types.get(key)})",
            )


def check_repr(cls: type) -> None:
    """``repr`` works (it lists the parameters)."""
    for _, inst in _instances(cls):
        _require(isinstance(repr(inst), str), cls, "repr() must return a string")


def check_resolves(cls: type, plugin_manager: Any) -> None:
    """``cls.name`` resolves to ``cls`` in ``plugin_manager`` (registered, unique)."""
    from sedna_core.plugins import resolve_algorithm

    try:
        found = resolve_algorithm(cls.kind, cls.name, plugin_manager=plugin_manager)  # type: ignore[attr-defined]
    except Exception as exc:
        raise AssertionError(f"{cls.__qualname__}: {exc}") from exc
    _require(found is cls, cls, f"name {cls.name!r} resolves to {found}")  # type: ignore[attr-defined]


def _check_unique_among(cls: type, *, others: tuple[type, ...]) -> None:
    same = [o for o in others if o is not cls and o.kind == cls.kind and o.name == cls.name]  # type: ignore[attr-defined]
    _require(not same, cls, f"name {cls.name!r} is also used by {same}")  # type: ignore[attr-defined]


# -- kind checks ---------------------------------------------------------------------------


def check_miner_batch_equals_per_sample(cls: type) -> None:
    """``mine(batch)`` is a bool array, equal to calling the miner on each sample."""
    batches = _inputs(cls, _default_miner_inputs)
    for kwargs, _ in _instances(cls):
        for batch in batches:
            # two fresh instances, so a seeded random miner draws the same numbers in both
            batch_miner, sample_miner = cls(**kwargs), cls(**kwargs)
            decisions = np.asarray(batch_miner.mine(batch))
            _require(
                decisions.dtype == np.bool_ and decisions.shape == (len(batch),),
                cls,
                f"mine() of {len(batch)} samples must return a bool array of shape "
                f"({len(batch)},), got {decisions.dtype} {decisions.shape}",
            )
            single = [sample_miner(sample) for sample in batch]
            _require(
                all(isinstance(s, bool | np.bool_) for s in single),
                cls,
                "calling the miner on one sample must return a bool",
            )
            _require(
                decisions.tolist() == [bool(s) for s in single],
                cls,
                f"batch decisions {decisions.tolist()} differ from per-sample decisions "
                f"{[bool(s) for s in single]}",
            )


def check_aggregator_rounds(cls: type) -> None:
    """Rounds of begin_round/accumulate/finish give weights shaped like the global ones.

    The same rounds given as ``add_update`` sources to a second fresh instance give the same
    weights: both instances start from the same state, so strategies that keep state across
    rounds (server momentum, optimiser moments) are compared like stateless ones.
    """
    rounds = _inputs(cls, _default_aggregation_inputs)
    for kwargs, agg in _instances(cls):
        replay = cls(**kwargs)
        for global_weights, updates in rounds:
            kept = [[np.array(a, copy=True) for a in u] for u, _ in updates]
            agg.begin_round(global_weights)
            for update, n in updates:
                agg.accumulate(update, n)
            out = agg.finish()
            for (update, _), copy in zip(updates, kept, strict=True):
                _require(
                    all(np.array_equal(a, b) for a, b in zip(update, copy, strict=True)),
                    cls,
                    "accumulate() modified an update it was given; copy before accumulating",
                )
            _require(
                isinstance(out, list) and len(out) == len(global_weights),
                cls,
                f"finish() must return a list of {len(global_weights)} arrays",
            )
            for got, ref in zip(out, global_weights, strict=True):
                got = np.asarray(got)
                _require(
                    got.shape == np.shape(ref),
                    cls,
                    f"finish() gave shape {got.shape}, the global weights have {np.shape(ref)}",
                )
                _require(bool(np.all(np.isfinite(got))), cls, "finish() gave non-finite weights")
            replay.begin_round(global_weights)
            for update, n in updates:
                replay.add_update(ArrayUpdate(update, n))
            again = replay.finish()
            same = all(
                _close(np.asarray(a), np.asarray(b)) for a, b in zip(again, out, strict=True)
            )
            _require(
                same,
                cls,
                "a round given as add_update() sources differs from the same round given "
                "to accumulate()",
            )


def check_backend_roundtrip(cls: type) -> None:
    """train, predict, get/set_weights, save/load and evaluate work on a tiny estimator."""
    _require(
        conformance_hook(cls, "conformance_examples") is not None,
        cls,
        "a backend must define classmethod conformance_examples() returning "
        "[{'estimator': <tiny model or factory>, ...}]",
    )
    x, y = _inputs(cls, _default_backend_inputs)
    for kwargs, backend in _instances(cls):
        backend.train((x, y))
        pred = np.asarray(backend.predict(x))
        _require(len(pred) == len(x), cls, f"predict() of {len(x)} rows gave {len(pred)}")
        _check_linear_decision(cls, backend, x)
        if type(backend).predict_proba is not BaseBackend.predict_proba:
            proba = np.asarray(backend.predict_proba(x))
            _require(len(proba) == len(x), cls, "predict_proba() must give one row per sample")
        weights = backend.get_weights()
        _require(
            isinstance(weights, list) and all(isinstance(w, np.ndarray) for w in weights),
            cls,
            "get_weights() must return a list of numpy arrays",
        )
        backend.set_weights(weights)
        _require(
            _close(np.asarray(backend.predict(x)), pred),
            cls,
            "set_weights(get_weights()) changed the predictions",
        )
        with tempfile.TemporaryDirectory() as tmp:
            written = backend.save(str(pathlib.Path(tmp) / f"model{cls.model_suffix}"))  # type: ignore[attr-defined]
            fresh = cls(**kwargs)
            fresh.load(written)
            _require(
                _close(np.asarray(fresh.predict(x)), pred),
                cls,
                "a fresh instance loading save()'s file predicts differently",
            )
        scores = backend.evaluate((x, y))
        _require(isinstance(scores, cabc.Mapping), cls, "evaluate() must return a mapping")


def _check_linear_decision(cls: type, backend: Any, x: Any) -> None:
    """A declared ``linear_decision`` decides as ``predict`` does on ``x`` as float64 (rows
    within a relative 1e-9 of a tie are skipped: rounding may decide those either way)."""
    ask = getattr(backend, "linear_decision", None)
    data = np.asarray(x)
    if not callable(ask) or data.ndim != 2 or data.dtype.kind not in "iuf":
        return
    x64 = data.astype(np.float64)
    decision = ask(x64.shape[1])
    if decision is None:
        return
    _require(
        isinstance(decision, LinearDecision),
        cls,
        "linear_decision() must return a sedna_core.backends.LinearDecision or None",
    )
    pred = np.asarray(backend.predict(x64))
    coef = decision.coef.astype(np.float64)
    intercept = np.asarray(decision.intercept, dtype=np.float64).reshape(-1)
    scores = x64 @ coef.T + intercept
    scale = np.abs(x64) @ np.abs(coef).T + np.abs(intercept)
    if decision.rule == "sign":
        idx = (scores[:, 0] > 0).astype(np.intp)
        margin, tol = np.abs(scores[:, 0]), scale[:, 0]
    else:
        idx = np.argmax(scores, axis=1)
        top = np.sort(scores, axis=1)[:, -2:]
        margin, tol = top[:, 1] - top[:, 0], scale.max(axis=1)
    clear = margin > 1e-9 * tol
    expected = decision.classes.take(idx)
    _require(
        expected.dtype == pred.dtype and np.array_equal(expected[clear], pred[clear]),
        cls,
        "linear_decision() declares a rule that predict() does not follow on float64 input: "
        "return None unless predict is exactly that linear rule",
    )


def check_lifelong_calls(cls: type) -> None:
    """The class's ``conformance_inputs()`` calls run in order and give well-shaped results."""
    hook = conformance_hook(cls, "conformance_inputs")
    _require(
        hook is not None,
        cls,
        "define classmethod conformance_inputs() returning the calls to try, e.g. "
        "[('fit', (task_data,)), ('score', (samples,))]",
    )
    calls = hook()  # type: ignore[misc]
    for _, inst in _instances(cls):
        for method, args in calls:
            result = getattr(inst, method)(*args)
            if method in ("allocate", "score"):
                n = n_rows(args[0])  # tables may be mappings of columns
                arr = np.asarray(result)
                _require(arr.shape[:1] == (n,), cls, f"{method}() of {n} samples gave {arr.shape}")
            if method == "integrate":
                n = args[1]
                _require(len(result) == n, cls, f"integrate(..., {n}) gave {len(result)} results")


def check_state_roundtrip(cls: type) -> None:
    """Fitted state survives JSON: ``get_state()`` dumps as JSON, and a fresh instance given it
    by ``set_state()`` answers the last ``allocate``/``score``/``detect`` call the same way.

    Applies to the kinds whose fitted state goes to the knowledge base's JSON task index
    (task allocation, unseen-task detection); it runs the class's ``conformance_inputs()``.
    """
    import json

    hook = conformance_hook(cls, "conformance_inputs")
    if hook is None:
        return  # check_lifelong_calls reports the missing hook
    calls = hook()
    answers = [(m, a) for m, a in calls if m in ("allocate", "score", "detect")]
    for kwargs, inst in _instances(cls):
        for method, args in calls:
            getattr(inst, method)(*args)
        state = inst.get_state()  # type: ignore[attr-defined]
        try:
            text = json.dumps(state)
        except (TypeError, ValueError) as exc:
            raise AssertionError(
                f"{cls.__qualname__}: get_state() must be JSON-compatible (arrays through "
                f"sedna_core.algorithms.mtl.array_to_json): {exc}"
            ) from exc
        fresh = cls(**kwargs)
        fresh.set_state(json.loads(text))  # type: ignore[attr-defined]
        for method, args in answers[-1:]:
            want = np.asarray(getattr(inst, method)(*args))
            got = np.asarray(getattr(fresh, method)(*args))
            _require(
                _close(got, want),
                cls,
                f"a fresh instance restored with set_state(get_state()) answers {method}() "
                "differently; get_state() must hold everything fit() learned",
            )


def check_transform_roundtrip(cls: type) -> None:
    """An update transform keeps the model's shape through the chain's every stage.

    ``encode`` gives exactly the tensors ``wire_specs`` announces (the server checks frames
    against them), ``decode`` gives a finite delta shaped and typed like the model, the server
    stages keep it so, ``state_dict`` restores into a fresh instance, and a transform that
    changes nothing on the client does not claim ``client_side``.
    """
    from sedna_core.algorithms.aggregation import specs_of
    from sedna_core.algorithms.secure import BaseSecureAggregation
    from sedna_core.algorithms.transform import TransformContext

    if issubclass(cls, BaseSecureAggregation):
        check_secure_round(cls)
        return
    rounds = _inputs(cls, _default_transform_inputs)
    for kwargs, inst in _instances(cls):
        for number, delta in enumerate(rounds, start=1):
            specs = specs_of(delta)
            rng = np.random.default_rng(number)
            ctx = TransformContext(number, specs, num_clients=3, total_clients=10, rng=rng)
            wire = inst.encode([np.array(d, copy=True) for d in delta], ctx)
            expected = inst.wire_specs(specs)
            _require(
                isinstance(wire, list) and len(wire) == len(expected),
                cls,
                f"encode() must return a list of {len(expected)} arrays (wire_specs)",
            )
            for i, (got, spec) in enumerate(zip(wire, expected, strict=True)):
                got = np.asarray(got)
                _require(
                    got.dtype == spec.dtype and got.shape == spec.shape,
                    cls,
                    f"encode() tensor {i} is {got.dtype}{list(got.shape)}, wire_specs() says "
                    f"{spec.dtype}{list(spec.shape)}",
                )
            changed = len(wire) != len(delta) or not all(
                np.array_equal(np.asarray(w), d) for w, d in zip(wire, delta, strict=False)
            )
            _require(
                not changed or cls.client_side,
                cls,
                "encode() changes updates, so the class must set client_side = True",
            )
            decoded = inst.decode(list(wire), specs, ctx)
            _check_model_shaped(cls, "decode()", decoded, specs)
            server = inst.before_aggregation(decoded, 10, ctx)
            _check_model_shaped(cls, "before_aggregation()", server, specs)
            after = inst.after_aggregation(server, ctx)
            _check_model_shaped(cls, "after_aggregation()", after, specs)
            numbers = inst.end_round(ctx)
            _require(isinstance(numbers, dict), cls, "end_round() must return a dict")
        state = inst.state_dict()
        fresh = cls(**kwargs)
        fresh.load_state_dict({k: np.array(v, copy=True) for k, v in state.items()})
        again = fresh.state_dict()
        _require(
            set(again) == set(state)
            and all(_close(np.asarray(again[k]), np.asarray(state[k])) for k in state),
            cls,
            "load_state_dict(state_dict()) does not restore the state",
        )


def check_secure_round(cls: type) -> None:
    """A secure aggregation unmasks the weighted mean of a round run in memory: four clients
    through every stage, one of them leaving after its masked upload (the others reveal its
    seed); the result must be model-shaped and within 1e-3 of the mean of the deltas weighted
    by their samples (all below any sensible ``max_weight``)."""
    from sedna_core.algorithms.aggregation import ArrayUpdate, specs_of
    from sedna_core.algorithms.secure import BaseSecureAggregation, PeerKeys, UnmaskInput

    for _kwargs, inst in _instances(cls):
        assert isinstance(inst, BaseSecureAggregation)
        rng = np.random.default_rng(0)
        ids = ["a", "b", "c", "d"]
        deltas = {
            c: [rng.normal(scale=0.01, size=s).astype(np.float32) for s in ((8, 5), (5,))]
            for c in ids
        }
        samples = {c: 10 * (i + 1) for i, c in enumerate(ids)}
        specs = specs_of(deltas["a"])
        plan = inst.plan(ids, 0)
        _require(not plan.error, cls, f"plan() refused four clients: {plan.error}")
        secrets = {c: inst.client_round(1, 0, c) for c in ids}
        keys = {c: secrets[c].public_keys() for c in ids}
        sent, commitments = {}, {}
        for c in ids:
            peers = {v: PeerKeys(plan.index[v], keys[v]) for v in plan.neighbours[c]}
            sent[c], commitments[c] = secrets[c].share_keys(plan.index[c], plan.threshold, peers)
        for c in ids:
            bad = secrets[c].receive_shares({v: sent[v][c] for v in plan.neighbours[c]})
            _require(not bad, cls, f"receive_shares() refused honest shares from {bad}")
        wire = {c: secrets[c].mask(deltas[c], samples[c]) for c in ids}
        expected = inst.wire_specs(specs)
        for c in ids:
            _require(
                [(np.asarray(w).dtype, np.shape(w)) for w in wire[c]]
                == [(e.dtype, e.shape) for e in expected],
                cls,
                "mask() must return the tensors wire_specs() announces",
            )
        reveals = {}
        for c in ids[:-1]:  # "d" left after its upload
            near = set(plan.neighbours[c]) | {c}
            reveals[c] = secrets[c].reveal(sorted(near), [])
        job = UnmaskInput(
            1,
            0,
            specs,
            plan,
            keys,
            commitments,
            ids,
            {c: ArrayUpdate(wire[c], samples[c]) for c in ids},
            reveals,
        )
        mean = inst.unmask(job)
        _check_model_shaped(cls, "unmask()", mean, specs)
        total = sum(samples.values())
        for i, got in enumerate(mean):
            want = sum(samples[c] * deltas[c][i].astype(np.float64) for c in ids) / total
            _require(
                float(np.abs(np.asarray(got) - want).max()) <= 1e-3,
                cls,
                "unmask() does not give the weighted mean of the updates",
            )


def _check_model_shaped(cls: type, what: str, arrays: Any, specs: Sequence[Any]) -> None:
    _require(
        isinstance(arrays, list) and len(arrays) == len(specs),
        cls,
        f"{what} must return a list of {len(specs)} arrays",
    )
    for i, (got, spec) in enumerate(zip(arrays, specs, strict=True)):
        got = np.asarray(got)
        _require(
            got.shape == spec.shape and got.dtype == spec.dtype,
            cls,
            f"{what} tensor {i} is {got.dtype}{list(got.shape)}, the model's is "
            f"{spec.dtype}{list(spec.shape)}",
        )
        _require(bool(np.all(np.isfinite(got))), cls, f"{what} gave non-finite values")


_KIND_CHECKS: dict[str, list[Check]] = {
    "update_transform": [check_transform_roundtrip],
    "hard_example_mining": [check_miner_batch_equals_per_sample],
    "aggregation": [check_aggregator_rounds],
    "backend": [check_backend_roundtrip],
    "task_allocation": [check_lifelong_calls, check_state_roundtrip],
    "unseen_task_detection": [check_lifelong_calls, check_state_roundtrip],
}


# -- default inputs ------------------------------------------------------------------------


def _default_miner_inputs() -> list[Any]:
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=16)
    probs[:3] = [[0.98, 0.01, 0.01], [0.34, 0.33, 0.33], [0.5, 0.5, 0.0]]
    return [probs, list(probs), probs[:1]]


def _default_aggregation_inputs() -> list[Any]:
    shapes = [(3, 2), (4,)]
    global_weights = [np.zeros(s, dtype=np.float32) for s in shapes]
    clients = [(1.0, 10), (2.0, 30), (4.0, 20)]
    updates = [([np.full(s, v, dtype=np.float32) for s in shapes], n) for v, n in clients]
    return [(global_weights, updates), (global_weights, updates[:1])]


def _default_transform_inputs() -> list[list[np.ndarray]]:
    rng = np.random.default_rng(0)
    return [
        [rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=50).astype(np.float32)],
        [np.zeros((3, 4), dtype=np.float32), np.full(50, 2.0, dtype=np.float32)],
    ]


def _default_backend_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 4)).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.int64)
    return x, y


# -- helpers -------------------------------------------------------------------------------

_MISSING = object()


def _name_of(check: Check) -> str:
    return getattr(check, "__name__", None) or getattr(check, "func", check).__name__


def _require(ok: bool, cls: type, message: str) -> None:
    if not ok:
        raise AssertionError(f"{getattr(cls, '__qualname__', cls)}: {message}")


def _init_params(cls: type, *, all_kinds: bool = False) -> list[inspect.Parameter]:
    if cls.__init__ is object.__init__:  # type: ignore[misc]
        return []  # no constructor of its own: no parameters (not a *args/**kwargs sink)
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # type: ignore[misc]
    if all_kinds:
        return params
    return [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def conformance_hook(cls: type, name: str) -> Callable[[], Any] | None:
    """The class's conformance hook ``name`` (public spelling first, then ``_name``), or None.

    Parameters
    ----------
    cls
        The algorithm class.
    name
        ``"conformance_examples"`` or ``"conformance_inputs"``.

    Returns
    -------
    callable or None
        The bound classmethod to call; None when the class overrides neither spelling (the
        defaults of :class:`~sedna_core.algorithms.Algorithm` mean "the kit's own inputs").
    """
    hook = getattr(cls, name, None)
    default = getattr(Algorithm, name)
    if hook is not None and getattr(hook, "__func__", hook) is not default.__func__:
        return hook  # overridden: the class's own
    return getattr(cls, f"_{name}", None)


def _inputs(cls: type, default: Callable[[], Any]) -> Any:
    hook = conformance_hook(cls, "conformance_inputs")
    return hook() if hook is not None else default()


def _instances(cls: type) -> Iterator[tuple[dict[str, Any], Algorithm]]:
    hook = conformance_hook(cls, "conformance_examples")
    examples = hook() if hook is not None else [{}]
    _require(bool(examples), cls, "conformance_examples() returned no examples")
    for kwargs in examples:
        try:
            inst = cls(**kwargs)
        except Exception as exc:
            hint = "" if hook else "; define classmethod conformance_examples() -> list[dict]"
            raise AssertionError(
                f"{cls.__qualname__}: cannot build it with {kwargs!r}: {exc}{hint}"
            ) from exc
        yield kwargs, inst


def _stringable(value: Any) -> bool:
    if value is None or isinstance(value, str | bool | int | float | enum.Enum | pathlib.PurePath):
        return True
    if isinstance(value, np.generic):
        return True
    if isinstance(value, list | tuple | set | frozenset):
        return all(_stringable(v) for v in value)
    if isinstance(value, cabc.Mapping):
        return all(isinstance(k, str) and _stringable(v) for k, v in value.items())
    return False


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(np.asarray(a), np.asarray(b)))
        except Exception:
            return False
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except Exception:
        return False


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if np.issubdtype(a.dtype, np.number) and np.issubdtype(b.dtype, np.number):
        return bool(np.allclose(a, b, rtol=1e-5, atol=1e-6))
    return bool(np.array_equal(a, b))
