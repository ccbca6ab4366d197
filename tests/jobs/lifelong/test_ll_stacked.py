"""Many small task groups of linear classifiers answered in one vectorised pass
(``sedna_core/jobs/lifelong/_stacked.py``): any backend that declares ``linear_decision`` takes
it, the others are answered by their own ``predict``, and through the job the answers equal the
per-group path. The scikit-learn plugin's side (which models declare the rule, exact equality
with ``predict``) is tested in ``tests/plugins/sklearn/test_sklearn_linear_decision.py``."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sedna_plugin_sklearn.backend import SklearnBackend
from sklearn.linear_model import LogisticRegression

from sedna_core.backends import LinearDecision
from sedna_core.errors import BackendError
from sedna_core.jobs.lifelong import LifelongLearning
from sedna_core.jobs.lifelong import _inference as inference_module
from sedna_core.jobs.lifelong._stacked import LinearStacks, finite_matrix


class LinearModel:
    """A third-party framework's linear classifier (not scikit-learn)."""

    def __init__(self, weights, bias, labels):
        self.weights = np.asarray(weights, dtype=float)
        self.bias = np.asarray(bias, dtype=float)
        self.labels = np.asarray(labels)

    def predict(self, x):
        scores = np.asarray(x, dtype=float) @ self.weights.T + self.bias
        if len(self.weights) == 1:
            return self.labels[(scores[:, 0] > 0).astype(int)]
        return self.labels[np.argmax(scores, axis=1)]


class DuckBackend:
    """A third-party backend: no sedna-core base class, only the methods the job calls."""

    def __init__(self, model):
        self.model = model
        self.predicted = []  # row counts of predict calls

    def predict(self, data):
        self.predicted.append(len(data))
        return self.model.predict(data)


class LinearDuckBackend(DuckBackend):
    """The same, declaring the optional capability."""

    def linear_decision(self, n_features):
        m = self.model
        if m.weights.shape[1] != n_features:
            return None
        return LinearDecision(
            m.weights,
            m.bias,
            m.labels,
            rule="sign" if len(m.weights) == 1 else "argmax",
            watch=((self, "model", m), (m, "weights", m.weights)),
        )


def answer_groups(x, groups, backends, stacks=None):
    """The job's ``_answer_groups`` on ``groups`` whose models are ``backends``."""
    know = SimpleNamespace(
        groups=[SimpleNamespace(backend=b) for b in backends],
        stacks=stacks or LinearStacks(),
    )
    job = SimpleNamespace(_backend_of=None)  # every group has its backend: never called
    return inference_module.Inference._answer_groups(job, know, x, groups)


def duck_models(seed):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(40, 3)),
        LinearModel(rng.normal(size=(3, 3)), rng.normal(size=3), ["a", "b", "c"]),
        LinearModel(rng.normal(size=(1, 3)), rng.normal(size=1), [5, 9]),
    )


def test_a_third_party_backend_declaring_linear_decision_takes_the_stacked_pass():
    x, multi, binary = duck_models(0)
    backends = [LinearDuckBackend(multi), LinearDuckBackend(binary)]
    groups = [(0, np.arange(20)), (1, np.arange(20, 40))]
    answers = answer_groups(x, groups, backends)
    assert [b.predicted for b in backends] == [[], []]  # no predict call: all stacked
    np.testing.assert_array_equal(answers[0], multi.predict(x[:20]))
    np.testing.assert_array_equal(answers[1], binary.predict(x[20:]))


def test_a_third_party_backend_without_it_is_answered_by_its_own_predict():
    x, multi, binary = duck_models(1)
    plain, linear = DuckBackend(multi), LinearDuckBackend(binary)
    groups = [(0, np.arange(25)), (1, np.arange(25, 40))]
    answers = answer_groups(x, groups, [plain, linear])
    assert plain.predicted == [25] and linear.predicted == []
    np.testing.assert_array_equal(answers[0], multi.predict(x[:25]))
    np.testing.assert_array_equal(answers[1], binary.predict(x[25:]))


def test_a_replaced_watched_object_makes_the_job_ask_again():
    x, multi, _ = duck_models(2)
    backend, other = LinearDuckBackend(multi), LinearDuckBackend(multi)
    stacks = LinearStacks()
    first = stacks.member(0, backend, 3)
    assert first is not None and stacks.member(0, backend, 3) is first
    multi.weights = -multi.weights  # a new array: the old decision no longer holds
    assert stacks.member(0, backend, 3) is not first
    groups = [(0, np.arange(20)), (1, np.arange(20, 40))]
    answers = answer_groups(x, groups, [backend, other], stacks)
    np.testing.assert_array_equal(answers[0], multi.predict(x[:20]))


def test_a_malformed_decision_is_a_clear_error():
    w = np.ones((3, 2))
    with pytest.raises(BackendError, match="one coef row each"):
        LinearDecision(w, 0.0, np.array([0, 1]))
    with pytest.raises(BackendError, match="rule='sign'"):
        LinearDecision(w, 0.0, np.array([0, 1, 2]), rule="sign")
    with pytest.raises(BackendError, match="intercept has 2 values"):
        LinearDecision(w, np.zeros(2), np.array([0, 1, 2]))
    with pytest.raises(BackendError, match="2-D numpy array of floats"):
        LinearDecision(w.astype(int), 0.0, np.array([0, 1, 2]))

    class Wrong(DuckBackend):
        def linear_decision(self, n_features):
            return (self.model.weights, self.model.bias)

    _, multi, _ = duck_models(3)
    with pytest.raises(BackendError, match=r"return a sedna_core\.backends\.LinearDecision"):
        LinearStacks().member(0, Wrong(multi), 3)


def test_finite_matrix_takes_only_exact_finite_numbers():
    assert finite_matrix(np.array([[1, 2]], dtype=np.int32)).dtype == np.float64
    assert finite_matrix(np.array([[np.nan, 1.0]])) is None
    assert finite_matrix(np.array([[2**60, 1]])) is None  # not exact as float64
    assert finite_matrix(np.array([[-(2**63), 1]])) is None
    assert finite_matrix(np.ones((2, 2), dtype=np.float32)) is None  # may be scored in float32
    assert finite_matrix(np.ones((2, 2), dtype=np.int16)) is None
    assert finite_matrix(np.array([["a", "b"]])) is None
    assert finite_matrix(np.array([1.0, 2.0])) is None
    assert finite_matrix([[1.0]]) is None


# -- through the job --------------------------------------------------------------------------


def site_tasks(n_sites: int, per_site: int, seed: int):
    world = np.random.default_rng(7)
    means, rules = world.normal(0, 1.5, (n_sites, 4)), world.normal(0, 1, (n_sites, 4))
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(n_sites), per_site)
    x = rng.normal(means[site], 1.0)
    score = np.einsum("ij,ij->i", x - means[site], rules[site])
    y = np.where(score > 0.5, 2, np.where(score < -0.5, 0, 1))
    table = {"site": np.char.add("s", site.astype(str))} | {f"f{i}": x[:, i] for i in range(4)}
    return table, y


@pytest.fixture(scope="module")
def many_tasks(tmp_path_factory):
    x, y = site_tasks(30, 30, seed=0)
    ll = LifelongLearning(
        estimator=LogisticRegression(max_iter=300),
        task_definition={"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}},
        output_url=str(tmp_path_factory.mktemp("ll") / "out"),
    )
    ll.train((x, y))
    return ll


def per_group_path(monkeypatch, ll, data):
    """The job's answer with every group going through its model's own ``predict``."""
    with monkeypatch.context() as m:
        m.setattr(inference_module, "finite_matrix", lambda x: None)
        return ll.inference(data)


def test_inference_over_many_tasks_equals_the_per_group_path(monkeypatch, many_tasks):
    x, _ = site_tasks(30, 9, seed=1)
    calls = []
    real = SklearnBackend.predict
    with monkeypatch.context() as m:
        m.setattr(SklearnBackend, "predict", lambda self, d: calls.append(len(d)) or real(self, d))
        many_tasks.inference(x)
    assert calls == []  # 30 groups of 9 rows: all answered by the stacked pass
    result, flags, tasks = many_tasks.inference(x)
    ref_result, ref_flags, ref_tasks = per_group_path(monkeypatch, many_tasks, x)
    assert result.dtype == ref_result.dtype
    np.testing.assert_array_equal(result, ref_result)
    np.testing.assert_array_equal(flags, ref_flags)
    assert [(t.entry, t.task_id, t.is_unseen) for t in tasks] == [
        (t.entry, t.task_id, t.is_unseen) for t in ref_tasks
    ]
    for t, r in zip(tasks, ref_tasks, strict=True):
        np.testing.assert_array_equal(t.rows, r.rows)
        np.testing.assert_array_equal(t.result, r.result)


@given(st.integers(0, 2**31 - 1), st.integers(1, 200))
def test_inference_equals_the_per_group_path_on_random_batches(many_tasks, seed, rows):
    x, _ = site_tasks(30, 10, seed=seed)
    pick = np.random.default_rng(seed).choice(300, rows, replace=True)
    batch = {k: v[pick] for k, v in x.items()}
    with pytest.MonkeyPatch.context() as m:
        expected = per_group_path(m, many_tasks, batch)[0]
    np.testing.assert_array_equal(many_tasks.inference(batch)[0], expected)


def test_large_groups_and_non_finite_input_go_to_predict(monkeypatch, many_tasks):
    x, _ = site_tasks(30, 9, seed=2)
    sizes = []
    real = SklearnBackend.predict
    monkeypatch.setattr(
        SklearnBackend, "predict", lambda self, d: sizes.append(len(d)) or real(self, d)
    )
    big = {
        k: np.concatenate([v, np.repeat(v[:1], inference_module.LARGE_GROUP)]) for k, v in x.items()
    }
    many_tasks.inference(big)
    assert sizes == [inference_module.LARGE_GROUP + 9]  # only the large group called predict
    broken = {k: v.copy() for k, v in x.items()}
    broken["f0"][3] = np.nan
    with pytest.raises(Exception, match="NaN"):  # scikit-learn's own error, as before
        many_tasks.inference(broken)


def test_intercepts_of_every_shape_stack_as_scikit_learn_broadcasts_them():
    from sedna_core.jobs.lifelong._stacked import _stacked_intercepts

    mixed = [np.array([1.0, 2.0, 3.0]), 0.5, np.array([4.0])]
    np.testing.assert_array_equal(
        _stacked_intercepts(mixed, 3), [[1, 2, 3], [0.5, 0.5, 0.5], [4, 4, 4]]
    )
    np.testing.assert_array_equal(_stacked_intercepts([0.0, 1.0], 2), [[0, 0], [1, 1]])
    np.testing.assert_array_equal(_stacked_intercepts([np.array([2.0])], 1), [[2.0]])
