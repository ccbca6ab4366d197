"""What the mtl plugin's algorithms do: attribute tasks, allocation (vectorised, with unseen),
remodeling and integration, unseen-task detectors, update strategies, JSON state."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sedna_plugin_mtl.allocation import (
    TaskAllocationByCluster,
    TaskAllocationByDataAttr,
    TaskAllocationByOrigin,
    TaskAllocationBySVC,
)
from sedna_plugin_mtl.definition import (
    TaskDefinitionByCluster,
    TaskDefinitionByDataAttr,
    TaskDefinitionByOrigin,
    TaskDefinitionBySVC,
)
from sedna_plugin_mtl.detection import MahalanobisFilter, ModelProbeFilter, TaskAttrFilter
from sedna_plugin_mtl.grouping import (
    DefaultInferenceIntegrate,
    DefaultTaskRelationDiscover,
    DefaultTaskRemodeling,
)
from sedna_plugin_mtl.update import UpdateStrategyByFinetune, UpdateStrategyDefault
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score
from sklearn.svm import SVC

from sedna_core.algorithms.mtl import UNSEEN, DetectionData, Task, TaskResult
from sedna_core.errors import DataSourceError, JobError
from sedna_core.plugins import create_algorithm


def table(seasons, cities):
    n = len(seasons)
    return {
        "season": np.array(seasons),
        "city": np.array(cities),
        "temp": np.arange(n, dtype=float),
    }


def roundtrip(alg, cls):
    """A new instance restored from the JSON state of ``alg``."""
    fresh = cls(**alg.get_params())
    fresh.set_state(json.loads(json.dumps(alg.get_state())))
    return fresh


def test_ll_definition_by_attributes_names_tasks_like_sedna_and_keeps_input():
    x = table(["summer", "winter", "summer", "winter"], ["new york", "paris", "new york", "a_b"])
    before = {k: v.copy() for k, v in x.items()}
    result = TaskDefinitionByDataAttr(attribute=["season", "city"]).fit(x, np.arange(4))
    names = {t.entry: t for t in result.tasks}
    assert set(names) == {"summer_newyork", "winter_paris", "winter_a-b"}
    assert names["summer_newyork"].meta_attr == {"season": "summer", "city": "new york"}
    assert names["summer_newyork"].rows.tolist() == [0, 2]
    assert result.attribute_columns == ("season", "city")
    assert all(np.array_equal(x[k], before[k]) for k in x)  # Sedna dropped columns in place
    with pytest.raises(DataSourceError, match="needs the attribute column"):
        TaskDefinitionByDataAttr(attribute=["site"]).fit(x)


def test_ll_attribute_allocation_reports_unknown_combinations_as_unseen():
    train = table(["summer", "winter"], ["berlin", "rome"])
    result = TaskDefinitionByDataAttr(attribute="season, city").fit(train)
    alloc = roundtrip(result.allocator, TaskAllocationByDataAttr)
    x = table(["winter", "summer", "summer", "autumn"], ["rome", "berlin", "rome", "berlin"])
    ids = alloc.allocate(x)
    by_entry = {t.entry: t.task_id for t in result.tasks}
    assert ids.tolist() == [by_entry["winter_rome"], by_entry["summer_berlin"], UNSEEN, UNSEEN]


def test_ll_positional_attributes_on_numpy_arrays():
    x = np.array([[0, 1.5, 7], [1, 2.5, 7], [0, 0.5, 8]], dtype=float)
    result = TaskDefinitionByDataAttr(attribute=["0", "2"]).fit(x)  # strings from the env
    assert sorted(t.entry for t in result.tasks) == ["0.0_7.0", "0.0_8.0", "1.0_7.0"]
    assert result.allocator.allocate(np.array([[1, 9.0, 7], [5, 0, 5]])).tolist()[1] == UNSEEN


def test_ll_svc_allocation_state_reproduces_scikit_learn():
    x, y = load_digits(return_X_y=True)
    tasks = (y // 2) % 3
    alloc = TaskAllocationBySVC(gamma=0.001).fit(x[:900], tasks[:900], [])
    expected = SVC(gamma=0.001).fit(x[:900], tasks[:900]).predict(x[900:])
    restored = roundtrip(alloc, TaskAllocationBySVC)
    np.testing.assert_array_equal(restored.allocate(x[900:]), expected)


def test_ll_cluster_allocation_finds_digit_tasks():
    x, y = load_digits(return_X_y=True)
    alloc = TaskAllocationByCluster().fit(x[:1000], y[:1000] // 2, [])
    restored = roundtrip(alloc, TaskAllocationByCluster)
    assert (restored.allocate(x[1000:]) == y[1000:] // 2).mean() > 0.9


def test_ll_cluster_and_svc_definitions_come_with_a_fitted_allocator():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.3, (30, 2)), rng.normal(5, 0.3, (30, 2))])
    for definition in (TaskDefinitionByCluster(n_clusters=2), TaskDefinitionBySVC(n_class=2)):
        result = definition.fit(x)
        assert len(result.tasks) == 2
        np.testing.assert_array_equal(result.allocator.allocate(x), result.task_ids)
        assert result.task_ids[0] == 0  # numbered by first appearance


def test_ll_origin_definition_and_allocation():
    paths = np.array(["cityscapes/berlin/1.png", "synthia/2.png", "cityscapes/berlin/3.png"])
    result = TaskDefinitionByOrigin(attribute=["real", "sim"], city="berlin").fit(None, paths)
    assert {t.entry: t.rows.tolist() for t in result.tasks} == {"real": [0, 2], "sim": [1]}
    alloc = TaskAllocationByOrigin(attribute=["real", "sim"], city="berlin", column=0)
    alloc.fit(None, result.task_ids, result.tasks)
    assert alloc.allocate(paths.reshape(-1, 1)).tolist() == result.task_ids.tolist()
    with pytest.raises(DataSourceError, match="default"):
        TaskAllocationByOrigin(column="path").fit(None, [], result.tasks).allocate({"x": [1]})


@given(st.lists(st.integers(min_value=-1, max_value=6), min_size=0, max_size=60))
def test_ll_remodel_then_integrate_restores_order(ids):
    ids = np.array(ids, dtype=np.int64)
    groups = DefaultTaskRemodeling().remodel(ids)
    covered = np.concatenate([rows for _, rows in groups]) if groups else np.empty(0)
    assert sorted(covered.tolist()) == list(range(len(ids)))
    assert all((ids[rows] == k).all() for k, rows in groups)
    # groups by ascending id, each group's rows in input order (the stable sort)
    assert [k for k, _ in groups] == sorted(set(ids.tolist()))
    assert all((np.diff(rows) > 0).all() for _, rows in groups)
    results = [TaskResult(str(k), k, rows, rows * 10 + 1) for k, rows in groups]
    merged = DefaultInferenceIntegrate().integrate(results, len(ids))
    assert merged.tolist() == [i * 10 + 1 for i in range(len(ids))]


def test_ll_integration_never_drops_a_sample_silently():
    integrate = DefaultInferenceIntegrate()
    with pytest.raises(JobError, match="1 of 3 samples have no result"):
        integrate.integrate([TaskResult("a", 0, np.array([0, 2]), np.array([1, 1]))], 3)
    with pytest.raises(JobError, match="one result per sample"):
        integrate.integrate([TaskResult("a", 0, np.array([0, 1]), np.array([1]))], 2)
    mixed = integrate.integrate(
        [
            TaskResult("a", 0, np.array([1]), np.array(["cat"])),
            TaskResult("b", 1, np.array([0]), np.array([7])),
        ],
        2,
    )
    assert mixed.tolist() == [7, "cat"]


def test_ll_relation_discovery_gives_one_group_per_task():
    tasks = [Task("a", 0), Task("b", 1)]
    groups = DefaultTaskRelationDiscover().discover(tasks)
    assert [(g.entry, g.task_ids) for g in groups] == [("a", [0]), ("b", [1])]


def digits_split():
    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    seen = y < 6
    train = np.flatnonzero(seen)[:700]
    valid = np.flatnonzero(seen)[700:850]
    test = np.concatenate([np.flatnonzero(seen)[850:], np.flatnonzero(~seen)])
    return x, y, train, valid, test


def test_ll_mahalanobis_detects_unseen_digit_tasks_with_threshold_from_validation():
    x, y, train, valid, test = digits_split()
    tasks = [Task(f"t{k}", k) for k in range(3)]
    det = MahalanobisFilter(target_fpr=0.05)
    det.fit(DetectionData(x[train], x[train], y[train] // 2, y[train]), tasks)
    det.calibrate(DetectionData(x[valid], x[valid], y[valid] // 2))
    restored = roundtrip(det, MahalanobisFilter)
    data = DetectionData(x[test], x[test], np.zeros(len(test), dtype=int))
    unseen = y[test] >= 6
    assert roc_auc_score(unseen, restored.score(data)) > 0.95
    flags = restored.detect(data)
    assert flags[~unseen].mean() < 0.12 and flags[unseen].mean() > 0.6


def test_ll_attribute_filter_and_model_probe_filter():
    tasks = [Task("summer_berlin", 0, {"season": "summer", "city": "berlin"})]
    x = table(["summer", "summer"], ["berlin", "oslo"])
    attr = TaskAttrFilter().fit(DetectionData(x, np.zeros((2, 1)), np.zeros(2, int)), tasks)
    attr = roundtrip(attr, TaskAttrFilter)
    data = DetectionData(x, np.zeros((2, 1)), np.array([0, UNSEEN]))
    assert attr.detect(data).tolist() == [False, True]

    def proba(task_id, rows):
        return np.array([[0.99, 0.01], [0.55, 0.45], [0.5, 0.5]])[rows]

    probe = ModelProbeFilter(measure="max_proba", target_fpr=0.0)
    calib = DetectionData(
        None, np.zeros((1, 1)), np.array([0]), proba=lambda k, r: np.array([[0.9, 0.1]])
    )
    probe.fit(calib, tasks)
    probe.calibrate(calib)
    stream = DetectionData(None, np.zeros((3, 1)), np.array([0, 0, 0]), proba=proba)
    assert probe.detect(stream).tolist() == [
        False,
        True,
        True,
    ]  # confident = seen (Sedna inverted it)


def test_ll_update_strategies():
    tasks = [Task("real", 0, {"origin": "real"}), Task("sim", 1, {"origin": "sim"})]
    alloc = np.array([0, 1, UNSEEN, 0])
    unseen = np.array([False, False, False, True])
    plan = UpdateStrategyDefault().decide(None, None, tasks, alloc, unseen)
    assert {k: v.tolist() for k, v in plan.updates.items()} == {0: [0], 1: [1]}
    assert plan.new_rows.tolist() == [2, 3] and set(plan.strategies.values()) == {"retrain"}
    labels = np.array(["berlin/a.png", "x.png", "berlin/b.png"])
    finetune = UpdateStrategyByFinetune(attribute=["real", "sim"], city="berlin")
    plan = finetune.decide(labels.reshape(-1, 1), labels, tasks, np.zeros(3), np.zeros(3, bool))
    assert {k: v.tolist() for k, v in plan.updates.items()} == {0: [0, 2], 1: [1]}
    assert plan.strategies == {0: "finetune", 1: "finetune"}
    with pytest.raises(Exception, match="strategy"):
        UpdateStrategyDefault(strategy="yolo").decide(None, None, tasks, alloc, unseen)


def test_ll_created_from_sedna_specs_with_string_parameters():
    alg = create_algorithm(
        "task_definition",
        {
            "method": "TaskDefinitionByDataAttr",
            "param": [{"key": "attribute", "value": "season,city"}],
        },
    )
    assert list(alg.attribute) == ["season", "city"]
    det = create_algorithm(
        "unseen_task_detection", {"method": "MahalanobisFilter", "param": {"shrinkage": "0.3"}}
    )
    assert det.shrinkage == 0.3
    legacy = create_algorithm("unseen_task_detection", "SampleRegonitionDefault")
    assert isinstance(legacy, MahalanobisFilter)


def test_ll_allocation_of_a_batch_equals_row_by_row():
    x, y = load_digits(return_X_y=True)
    alloc = TaskAllocationByCluster().fit(x[:600], y[:600] // 2, [])
    batch = alloc.allocate(x[600:700])
    rows = [int(alloc.allocate(x[i : i + 1])[0]) for i in range(600, 700)]
    assert batch.tolist() == rows
