"""Column tables (``{"season": [...], "temp": [...]}``) with tasks defined on some columns only.

Regression: with ``TaskDefinitionByDataAttr(["season"])`` on the weather tables, the ``city``
column (text) stays with the samples. Task models then receive the table, and every datasource
counted a table's *columns* as its samples, so training on several sites failed with
"x has 7 samples but y has 320 labels" for any estimator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from examples.demo.lifelong import FEATURES, make_weather_tasks
from sedna_core.datasources import BaseDataSource
from sedna_core.errors import BackendError
from sedna_core.jobs.lifelong import LifelongLearning

SITES = [("summer", "paris"), ("summer", "rome"), ("winter", "rome"), ("winter", "berlin")]
BY_SEASON = {"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["season"]}}


class TableModel:
    """A "Customize" estimator that reads column tables: the readings plus one-hot cities."""

    def __init__(self, cities: tuple[str, ...] = ("berlin", "paris", "rome")) -> None:
        self.cities = cities
        self.model = LogisticRegression(max_iter=500)

    def _matrix(self, table: dict[str, np.ndarray]) -> np.ndarray:
        assert "season" not in table  # the task attribute is not a model feature
        onehot = (np.asarray(table["city"])[:, None] == np.array(self.cities)).astype(float)
        return np.column_stack([*(table[f] for f in FEATURES), onehot])

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> dict[str, float]:
        self.model.fit(self._matrix(train_data.x), train_data.y)
        return {"accuracy": float(self.model.score(self._matrix(train_data.x), train_data.y))}

    def predict(self, data: Any, **kwargs: Any) -> np.ndarray:
        return self.model.predict(self._matrix(data))

    def save(self, model_path: str) -> str:
        np.savez(model_path, coef=self.model.coef_, intercept=self.model.intercept_)
        return model_path if model_path.endswith(".npz") else model_path + ".npz"

    def load(self, model_url: str) -> None:
        with np.load(model_url) as f:
            self.model.coef_, self.model.intercept_ = f["coef"], f["intercept"]
        self.model.classes_ = np.array([0, 1])


def test_a_datasource_counts_the_rows_of_a_column_table() -> None:
    x, y = make_weather_tasks(seed=0, n_per_site=20, sites=SITES)
    assert len(BaseDataSource(x, y)) == len(y) == 80  # not its 8 columns


def test_tasks_on_one_attribute_with_a_text_column_train_and_infer(tmp_path: Path) -> None:
    x, y = make_weather_tasks(seed=0, n_per_site=80, sites=SITES)
    ll = LifelongLearning(
        estimator=TableModel(), task_definition=BY_SEASON, output_url=str(tmp_path / "out")
    )
    feedback = ll.train((x, y))
    assert sorted(feedback) == ["summer", "winter"]
    xt, yt = make_weather_tasks(seed=1, n_per_site=40, sites=SITES)
    result, is_unseen, tasks = ll.inference(xt)
    assert not np.any(is_unseen)
    assert sorted(t.entry for t in tasks) == ["summer", "winter"]
    assert len(result) == len(yt) and (np.asarray(result) == yt).mean() > 0.6
    assert "season" in x and "city" in x  # the caller's table is untouched


def test_a_numeric_model_names_the_text_column_it_cannot_use(tmp_path: Path) -> None:
    x, y = make_weather_tasks(seed=0, n_per_site=40, sites=SITES)
    ll = LifelongLearning(
        estimator=LogisticRegression(max_iter=500),
        task_definition=BY_SEASON,
        output_url=str(tmp_path / "out"),
    )
    with pytest.raises(BackendError, match=r"\['city'\] are neither task attributes nor numeric"):
        ll.train((x, y))


def test_tasks_on_one_attribute_with_numeric_columns_train_a_numeric_model(
    tmp_path: Path,
) -> None:
    x, y = make_weather_tasks(seed=0, n_per_site=80, sites=SITES)
    readings = {k: v for k, v in x.items() if k != "city"}
    ll = LifelongLearning(
        estimator=LogisticRegression(max_iter=500),
        task_definition=BY_SEASON,
        output_url=str(tmp_path / "out"),
    )
    assert sorted(ll.train((readings, y))) == ["summer", "winter"]
    result, is_unseen, _ = ll.inference(readings)
    assert not np.any(is_unseen) and len(result) == len(y)
