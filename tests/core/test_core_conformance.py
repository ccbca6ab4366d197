"""The conformance kit accepts well-behaved algorithms and names what is wrong with the others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from sedna_core.algorithms import BaseAggregation, BaseBackend, BaseHardExampleMiner
from sedna_core.plugins import SednaPluginManager, create_algorithm
from sedna_core.testing import (
    DoublesPlugin,
    InMemoryEstimator,
    RecordingPlugin,
    ScriptedMiner,
    check_algorithm,
    parametrize_with_checks,
)
from sedna_core.testing.doubles import DoublesPlugin as _DoublesPlugin


class MaxProb(BaseHardExampleMiner):
    name = "MaxProb"

    def __init__(self, threshold: float = 0.6, classes: list[int] | None = None) -> None:
        self.threshold = threshold
        self.classes = classes

    def mine(self, results):
        return np.asarray(results, dtype=float).reshape(len(results), -1).max(axis=1) < (
            self.threshold
        )


class SeededRandom(BaseHardExampleMiner):
    name = "SeededRandom"

    def __init__(self, ratio: float = 0.5, seed: int = 0) -> None:
        self.ratio = ratio
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def mine(self, results):
        return self._rng.random(len(results)) < self.ratio


class Mean(BaseAggregation):
    name = "Mean"

    def __init__(self, weighted: bool = True) -> None:
        self.weighted = weighted

    def begin_round(self, global_weights):
        self._shapes = [np.shape(w) for w in global_weights]
        self._sum = [np.zeros_like(w, dtype=np.float64) for w in global_weights]
        self._n = 0

    def add_update(self, source):
        sizes = [int(np.prod(s)) for s in self._shapes]
        update = [
            np.array(source.read(i, 0, n)).reshape(s)
            for i, (n, s) in enumerate(zip(sizes, self._shapes, strict=True))
        ]
        self.accumulate(update, source.num_samples)

    def accumulate(self, update, num_samples):
        n = num_samples if self.weighted else 1
        self._sum = [s + n * np.asarray(u) for s, u in zip(self._sum, update, strict=True)]
        self._n += n

    def finish(self):
        return [s / self._n for s in self._sum]


class Momentum(Mean):
    """Server momentum: every round's result depends on the rounds before it."""

    name = "Momentum"

    def __init__(self, weighted: bool = True, beta: float = 0.9) -> None:
        super().__init__(weighted)
        self.beta = beta
        self._velocity: list[np.ndarray] | None = None

    def finish(self):
        mean = super().finish()
        if self._velocity is None:
            self._velocity = [np.zeros_like(m) for m in mean]
        self._velocity = [self.beta * v + m for v, m in zip(self._velocity, mean, strict=True)]
        return [v.copy() for v in self._velocity]


class MemoryBackend(BaseBackend):
    name = "memory"
    framework = "numpy"
    model_suffix = ".npz"

    def __init__(self, estimator: Any = InMemoryEstimator) -> None:
        self.estimator = estimator
        self._model = None

    @classmethod
    def _conformance_examples(cls) -> list[dict[str, Any]]:
        return [{"estimator": InMemoryEstimator}]

    @property
    def model(self):
        if self._model is None:
            self._model = self.estimator() if callable(self.estimator) else self.estimator
        return self._model

    def train(self, train_data, valid_data=None, **kwargs):
        return self.model.train(train_data)

    def predict(self, data, **kwargs):
        return self.model.predict(data)

    def predict_proba(self, data, **kwargs):
        return self.model.predict_proba(data)

    def evaluate(self, data, metrics=None, **kwargs):
        return self.model.evaluate(data)

    def save(self, path):
        return self.model.save(path)

    def load(self, path):
        self.model.load(path)

    def get_weights(self):
        return self.model.get_weights()

    def set_weights(self, weights: Sequence[np.ndarray]):
        self.model.set_weights(weights)


@parametrize_with_checks([MaxProb, SeededRandom, Mean, Momentum, MemoryBackend, ScriptedMiner])
def test_conformance(algorithm, check) -> None:
    check(algorithm)


# -- what the kit catches ------------------------------------------------------------------


class Sink(MaxProb):
    name = "Sink"

    def __init__(self, threshold: float = 0.6, **kwargs: Any) -> None:
        super().__init__(threshold)


class Unannotated(MaxProb):
    name = "Unannotated"

    def __init__(self, threshold=0.6) -> None:  # type: ignore[no-untyped-def]
        super().__init__(threshold)


class Renamed(MaxProb):
    name = "Renamed"

    def __init__(self, threshold: float = 0.6) -> None:
        self.limit = threshold


class Modifies(MaxProb):
    name = "Modifies"

    def __init__(self, threshold: float = 60) -> None:
        self.threshold = threshold / 100


class Nameless(MaxProb):
    name = ""


class Inconsistent(BaseHardExampleMiner):
    name = "Inconsistent"

    def __init__(self) -> None:
        pass

    def mine(self, results):
        return np.arange(len(results)) % 2 == 0  # depends on the position in the batch


class NotBool(MaxProb):
    name = "NotBool"

    def mine(self, results):
        return super().mine(results).astype(int)


class Mutates(Mean):
    name = "Mutates"

    def accumulate(self, update, num_samples):
        update[0] *= 2
        super().accumulate(update, num_samples)


class WrongShape(Mean):
    name = "WrongShape"

    def finish(self):
        return super().finish()[:1]


class Miscounts(Mean):
    name = "Miscounts"

    def add_update(self, source):
        super().add_update(source)
        self._n += 1  # miscounts, so a round given as sources averages differently


class Forgetful(MemoryBackend):
    name = "forgetful"

    def load(self, path):
        pass  # a fresh instance never gets the saved centroids

    @property
    def model(self):
        if self._model is None:
            self._model = InMemoryEstimator()
            self._model.set_weights([np.zeros((2, 4))])
        return self._model


@pytest.mark.parametrize(
    ("cls", "message"),
    [
        (Sink, "sink"),
        (Unannotated, "no type annotation"),
        (Renamed, "does not store parameter threshold"),
        (Modifies, "__init__ changes parameter threshold"),
        (Nameless, "non-empty class attribute `name`"),
        (Inconsistent, "differ from per-sample decisions"),
        (NotBool, "must return a bool array"),
        (Mutates, "modified an update"),
        (WrongShape, "must return a list of 2 arrays"),
        (Miscounts, "add_update\\(\\) sources differs"),
        (Forgetful, "predicts differently"),
    ],
)
def test_kit_catches(cls: type, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_algorithm(cls)


def test_duplicate_names_in_one_parametrization() -> None:
    class Twin(MaxProb):
        name = "MaxProb"

    mark = parametrize_with_checks([MaxProb, Twin])
    unique_checks = [
        c
        for (_, c), i in zip(mark.args[1], mark.kwargs["ids"], strict=True)
        if i.endswith("check_name_unique")
    ]
    with pytest.raises(AssertionError, match="also used by"):
        unique_checks[0](MaxProb)


def test_check_algorithm_with_a_plugin_manager(sedna_pm: SednaPluginManager) -> None:
    sedna_pm.register(DoublesPlugin(), name="doubles")
    check_algorithm(ScriptedMiner, plugin_manager=sedna_pm)
    with pytest.raises(AssertionError, match="no hard_example_mining algorithm named 'MaxProb'"):
        check_algorithm(MaxProb, plugin_manager=sedna_pm)


def test_lifelong_kinds_need_conformance_inputs() -> None:
    from sedna_core.algorithms import BaseTaskAllocation

    class ByFirstColumn(BaseTaskAllocation):
        name = "ByFirstColumn"

        def __init__(self, n_tasks: int = 2) -> None:
            self.n_tasks = n_tasks

        def fit(self, x, task_ids, tasks):
            return self

        def allocate(self, samples):
            return (np.asarray(samples)[:, 0] > 0).astype(int) % self.n_tasks

    with pytest.raises(AssertionError, match="define classmethod conformance_inputs"):
        check_algorithm(ByFirstColumn)
    calls = [("fit", (None, None, [])), ("allocate", (np.array([[1.0], [-1.0], [2.0]]),))]
    ByFirstColumn.conformance_inputs = classmethod(lambda cls: calls)  # type: ignore[attr-defined]
    check_algorithm(ByFirstColumn)
    del ByFirstColumn.conformance_inputs  # type: ignore[attr-defined]
    ByFirstColumn._conformance_inputs = classmethod(lambda cls: calls)  # type: ignore[attr-defined]
    check_algorithm(ByFirstColumn)  # the older, private spelling is still read


def test_doubles() -> None:
    est = InMemoryEstimator(n_classes=2)
    x = np.array([[0.0, 0.0], [0.1, 0.0], [5.0, 5.0], [5.1, 4.9]])
    y = np.array([0, 0, 1, 1])
    assert est.train((x, y))["accuracy"] == 1.0
    assert est.predict(np.array([[4.0, 4.0]])).tolist() == [1]
    assert est.predict_proba(x).shape == (4, 2)
    miner = create_algorithm(
        "hard_example_mining",
        {"method": ScriptedMiner, "param": {"decisions": "[true, false]", "default": "no"}},
    )
    assert miner.mine([1, 2, 3]).tolist() == [True, False, False]
    assert _DoublesPlugin is DoublesPlugin
    rec = RecordingPlugin()
    pm = SednaPluginManager()
    pm.register(rec, name="rec")
    from sedna_core.plugins import announce

    announce(
        "sedna_model_deployed", plugin_manager=pm, job_name="il", version="3", metrics={"f1": 1}
    )
    assert rec.calls("sedna_model_deployed") == [
        {"job_name": "il", "version": "3", "metrics": {"f1": 1}}
    ]
