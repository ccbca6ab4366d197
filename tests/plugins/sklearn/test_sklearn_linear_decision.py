"""sedna-plugin-sklearn's ``linear_decision``: which models declare scikit-learn's linear rule,
and that the lifelong job's stacked pass over them predicts exactly what ``predict`` does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sedna_plugin_sklearn.backend import SklearnBackend
from sklearn.linear_model import LogisticRegression, Perceptron, RidgeClassifier, SGDClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from sedna_core.backends import LinearDecision
from sedna_core.jobs.lifelong._stacked import LinearStacks, finite_matrix, score_small_groups

LINEAR = (LogisticRegression, SGDClassifier, LinearSVC, Perceptron)


def fitted_like(cls, coef, intercept, classes):
    """A fitted linear classifier of ``cls`` with the given coefficients (no training)."""
    model = cls()
    model.coef_ = np.asarray(coef, dtype=float)
    model.intercept_ = intercept
    model.classes_ = np.asarray(classes)
    model.n_features_in_ = model.coef_.shape[1]
    return model


def stacked_answers(x, groups, backends):
    """What the stacked pass answers per group (None: left to the model's ``predict``)."""
    stacks = LinearStacks()
    members = [stacks.member(i, b, x.shape[1]) for i, b in enumerate(backends)]
    indices, decided = score_small_groups(finite_matrix(x), groups, members)
    return [
        m.classes.take(idx) if m is not None and idx is not None and ok else None
        for m, idx, ok in zip(members, indices, decided, strict=True)
    ]


@st.composite
def linear_tasks(draw):
    """Task models of one shape, rows spread over them, with exact ties and zero rows mixed in."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_models = draw(st.integers(1, 12))
    n_features = draw(st.integers(1, 9))
    n_classes = draw(st.sampled_from([2, 3, 5]))
    integral = draw(st.booleans())  # small integers: many exact ties and zero scores
    fit_intercept = draw(st.booleans())
    cls = draw(st.sampled_from(LINEAR))
    rng = np.random.default_rng(seed)
    rows_of = rng.integers(0, n_models, draw(st.integers(1, 80)))
    x = (
        rng.integers(-2, 3, (len(rows_of), n_features))
        if integral
        else rng.normal(0, 3, (len(rows_of), n_features))
    )
    coef_rows = 1 if n_classes == 2 else n_classes
    labels = rng.choice(np.array([3, 7, 11, 20, 42]), n_classes, replace=False)
    models = []
    for _ in range(n_models):
        coef = (
            rng.integers(-1, 2, (coef_rows, n_features))
            if integral
            else rng.normal(0, 1, (coef_rows, n_features))
        )
        intercept = (
            rng.integers(-1, 2, coef_rows).astype(float)
            if fit_intercept
            else (0.0 if cls is LinearSVC else np.zeros(coef_rows))
        )
        models.append(fitted_like(cls, coef, intercept, np.sort(labels)))
    return x, rows_of, models


@given(linear_tasks())
def test_stacked_pass_predicts_exactly_what_each_model_predicts(case):
    x, rows_of, models = case
    groups = [(g, np.flatnonzero(rows_of == g)) for g in np.unique(rows_of)]
    backends = [SklearnBackend(models[g]) for g, _ in groups]
    answers = stacked_answers(x, groups, backends)
    for (g, rows), answer in zip(groups, answers, strict=True):
        own = models[g].predict(x[rows])
        if answer is not None:  # decided here: equal in value and type to predict's answer
            assert answer.dtype == own.dtype
            np.testing.assert_array_equal(answer, own)


def test_the_declared_decision_is_the_model_itself():
    x = np.random.default_rng(0).normal(size=(30, 3))
    model = LogisticRegression().fit(x, np.digitize(x[:, 0], [-0.5, 0.5]))
    decision = SklearnBackend(model).linear_decision(3)
    assert isinstance(decision, LinearDecision) and decision.rule == "argmax"
    # the model's own arrays, so values written in place are read on the next pass
    assert decision.coef is model.coef_ and decision.classes is model.classes_
    np.testing.assert_array_equal(
        decision.classes[np.argmax(x @ decision.coef.T + decision.intercept, axis=1)],
        model.predict(x),
    )
    binary = SklearnBackend(LogisticRegression().fit(x, x[:, 1] > 0)).linear_decision(3)
    assert binary is not None and binary.rule == "sign"


def test_a_row_on_the_decision_boundary_is_left_to_the_model():
    # 0.1 + 0.2 - 0.3 is 5.6e-17 in one summation order and 0 in another: within the bound
    model = fitted_like(LogisticRegression, [[0.1, 0.2]], np.array([-0.3]), [0, 1])
    far = fitted_like(LogisticRegression, [[1.0, 1.0]], np.array([0.0]), [0, 1])
    x = np.array([[1.0, 1.0], [5.0, 5.0], [-5.0, -5.0]])
    groups = [(0, np.array([0, 1])), (1, np.array([2]))]
    answers = stacked_answers(x, groups, [SklearnBackend(model), SklearnBackend(far)])
    assert answers[0] is None  # the tie row makes its whole group go to predict
    np.testing.assert_array_equal(answers[1], [0])


def test_only_plain_linear_classifiers_declare_a_linear_decision():
    x = np.random.default_rng(0).normal(size=(20, 3))
    y = (x[:, 0] > 0).astype(int)
    linear = SklearnBackend(LogisticRegression().fit(x, y))

    class Scaled(LogisticRegression):  # its own predict: not the linear rule
        def predict(self, data):
            return super().predict(np.asarray(data) * 2)

    class Shifted(SklearnBackend):  # a backend whose own predict changes the answers
        def predict(self, data):
            return super().predict(np.asarray(data) + 1.0)

    assert linear.linear_decision(3) is not None
    assert linear.linear_decision(4) is None  # another feature count: predict raises there
    assert (
        SklearnBackend(DecisionTreeClassifier(random_state=0).fit(x, y)).linear_decision(3) is None
    )
    assert SklearnBackend(Scaled().fit(x, y)).linear_decision(3) is None
    assert SklearnBackend(RidgeClassifier().fit(x, np.c_[y, 1 - y])).linear_decision(3) is None
    assert Shifted(LogisticRegression().fit(x, y)).linear_decision(3) is None
    assert SklearnBackend(LogisticRegression()).linear_decision(3) is None  # unfitted
    sparse = LogisticRegression().fit(x, y).sparsify()
    assert SklearnBackend(sparse).linear_decision(3) is None
    stacks = LinearStacks()
    assert stacks.member(0, linear, 3) is not None
    assert stacks.member(1, Shifted(LogisticRegression().fit(x, y)), 3) is None


def test_the_cache_follows_a_model_refitted_in_place():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 2))
    backend = SklearnBackend(LogisticRegression().fit(x, (x[:, 0] > 0).astype(int)))
    stacks = LinearStacks()
    first = stacks.member(0, backend, 2)
    assert stacks.member(0, backend, 2) is first  # unchanged: the same entry
    backend.model.fit(x, (x[:, 1] > 0).astype(int))  # new coef_ arrays: asked again
    second = stacks.member(0, backend, 2)
    assert second is not first
    backend.model = LogisticRegression().fit(x, (x[:, 0] > 1).astype(int))  # a new model
    assert stacks.member(0, backend, 2) not in (first, second)
    groups = [(0, np.arange(15)), (1, np.arange(15, 30))]
    other = SklearnBackend(LogisticRegression().fit(x, (x[:, 0] < 0).astype(int)))
    answers = stacked_answers(x, groups, [backend, other])
    np.testing.assert_array_equal(answers[0], backend.model.predict(x[:15]))


def test_products_that_underflow_are_decided_as_predict_decides():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3)) * 1e-160
    models = [
        fitted_like(LogisticRegression, rng.normal(size=(1, 3)) * 1e-160, np.zeros(1), [0, 1]),
        fitted_like(LogisticRegression, rng.normal(size=(3, 3)) * 1e-160, np.zeros(3), [0, 1, 2]),
    ]
    groups = [(0, np.arange(20)), (1, np.arange(20, 40))]
    answers = stacked_answers(x, groups, [SklearnBackend(models[0]), SklearnBackend(models[1])])
    for (g, rows), answer in zip(groups, answers, strict=True):
        if answer is not None:
            np.testing.assert_array_equal(answer, models[g].predict(x[rows]))


def test_coefficients_changed_in_place_are_read_on_the_next_pass():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 2))
    model = fitted_like(
        SGDClassifier, [[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], np.zeros(3), [0, 1, 2]
    )
    backend = SklearnBackend(model)
    stacks = LinearStacks()
    groups = [(0, np.arange(10)), (1, np.arange(10, 20))]
    other = SklearnBackend(fitted_like(SGDClassifier, np.eye(3, 2), np.zeros(3), [0, 1, 2]))

    def answers():
        members = [stacks.member(i, b, 2) for i, b in enumerate((backend, other))]
        indices, decided = score_small_groups(finite_matrix(x), groups, members)
        assert decided.all()
        return [m.classes.take(i) for m, i in zip(members, indices, strict=True)]

    answers()
    model.coef_ *= -1  # as a warm-started multiclass SGD writes its rows: same array object
    np.testing.assert_array_equal(answers()[0], model.predict(x[:10]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_coefficients_are_scored_as_predict_scores_them(dtype):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(40, 4))
    model = fitted_like(LogisticRegression, rng.normal(size=(3, 4)), np.zeros(3), [0, 1, 2])
    model.coef_ = model.coef_.astype(dtype)
    answers = stacked_answers(x, [(0, np.arange(40))], [SklearnBackend(model)])
    assert answers[0] is not None
    np.testing.assert_array_equal(answers[0], model.predict(x))


class FlippedRule(SklearnBackend):
    """Declares a rule that ``predict`` does not follow (the signs flipped)."""

    def linear_decision(self, n_features):
        found = super().linear_decision(n_features)
        if found is None:
            return None
        return LinearDecision(-found.coef, -np.asarray(found.intercept), found.classes, found.rule)


def test_the_conformance_check_holds_a_declared_rule_to_predict():
    from sedna_core.testing._checks import check_backend_roundtrip

    check_backend_roundtrip(SklearnBackend)  # the real rule: predict follows it
    with pytest.raises(AssertionError, match="does not follow"):
        check_backend_roundtrip(FlippedRule)
