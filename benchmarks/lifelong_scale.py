"""Lifelong inference as the number of tasks grows (issue 20).

Tasks are defined by an attribute (``TaskDefinitionByDataAttr`` on ``site``), one
LogisticRegression per task, trained locally (no knowledge-base server: this measures
inference routing, not the service). Then ``--rows`` rows spread over all tasks go through
``LifelongLearning.inference`` in one call, and rows/s is compared between ``--small`` tasks
(the peer: the same job with few tasks, same run) and ``--large`` tasks. ``--repeats`` timed
calls of each, alternating between the two jobs so that both see the same machine load, give
the median and range; the slowdown is also given per adjacent pair. Each line also says
whether the job's answers equal each task model's own ``predict`` on its rows (small groups of
linear models are answered in one stacked pass), and the 1-minute load average (the machine may
be shared).

Run: ``.venv/bin/python benchmarks/lifelong_scale.py`` (JSON lines).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
os.environ.setdefault("LOG_LEVEL", "WARNING")

from sklearn.linear_model import LogisticRegression  # noqa: E402

from sedna_core.jobs.lifelong import LifelongLearning  # noqa: E402

FEATURES = 6


def make_tasks(
    tasks: int, rows_per_task: int, seed: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A column table (``site`` and six readings) where each site has its own linear rule."""
    world = np.random.default_rng(1234)
    means = world.normal(0.0, 1.5, (tasks, FEATURES))
    rules = world.normal(0.0, 1.0, (tasks, FEATURES))
    rng = np.random.default_rng(seed)
    site = np.repeat(np.arange(tasks), rows_per_task)
    x = rng.normal(means[site], 1.0)
    y = (np.einsum("ij,ij->i", x - means[site], rules[site]) > 0).astype(np.int64)
    table = {"site": np.char.add("s", site.astype(str))}
    for i in range(FEATURES):
        table[f"f{i}"] = x[:, i]
    return table, y


class Case:
    """One job with ``tasks`` tasks, trained, and its 10k inference rows."""

    def __init__(self, tasks: int, rows: int, tmp: str) -> None:
        x_train, y_train = make_tasks(tasks, max(20, 2000 // tasks), seed=0)
        self.tasks, self.rows = tasks, rows
        self.job = LifelongLearning(
            estimator=LogisticRegression(max_iter=200),
            task_definition={
                "method": "TaskDefinitionByDataAttr",
                "param": {"attribute": ["site"]},
            },
            output_url=f"{tmp}/ll-{tasks}",
        )
        t0 = time.perf_counter()
        self.job.train((x_train, y_train))
        self.train_s = time.perf_counter() - t0
        x_test, y_test = make_tasks(tasks, -(-rows // tasks), seed=1)
        pick = np.random.default_rng(2).permutation(len(y_test))[:rows]
        self.x = {k: v[pick] for k, v in x_test.items()}
        self.y = y_test[pick]
        self.job.inference(self.x)  # warm: models loaded once
        self.rates: list[float] = []
        self.loads: list[float] = []

    def time_once(self) -> None:
        self.loads.append(os.getloadavg()[0])
        t0 = time.perf_counter()
        self.job.inference(self.x)
        self.rates.append(self.rows / (time.perf_counter() - t0))

    def report(self) -> dict:
        result, _, groups = self.job.inference(self.x)
        # each group's own model on its rows (the per-group path): answering small groups
        # together (``sedna_core/jobs/lifelong/_stacked.py``) must change no prediction
        features = np.column_stack([self.x[f"f{i}"] for i in range(FEATURES)])
        know = self.job.knowledge
        own = np.empty(self.rows, dtype=np.asarray(result).dtype)
        for t in groups:
            model = self.job._backend_of(know, know.groups[t.task_id]).model
            own[t.rows] = model.predict(features[t.rows])
        return {
            "bench": "lifelong_scale",
            "tasks": self.tasks,
            "rows": self.rows,
            "train_s": round(self.train_s, 1),
            "rows_per_s": round(statistics.median(self.rates)),
            "rows_per_s_min": round(min(self.rates)),
            "rows_per_s_max": round(max(self.rates)),
            "accuracy": round(float((np.asarray(result) == self.y).mean()), 3),
            "same_as_each_models_predict": bool(np.array_equal(result, own)),
            "load_average_1m": [round(min(self.loads), 2), round(max(self.loads), 2)],
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=5)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        small = Case(args.small, args.rows, tmp)
        large = Case(args.large, args.rows, tmp)
        for _ in range(args.repeats):  # alternated: both see the same machine load
            small.time_once()
            large.time_once()
        print(json.dumps(small.report()), flush=True)
        print(json.dumps(large.report()), flush=True)
    pairs = [a / b for a, b in zip(small.rates, large.rates, strict=True)]
    print(
        json.dumps(
            {
                "bench": "lifelong_scale_ratio",
                "tasks": [args.small, args.large],
                "slowdown": round(
                    statistics.median(small.rates) / statistics.median(large.rates), 2
                ),
                "slowdown_per_pair_min": round(min(pairs), 2),
                "slowdown_per_pair_max": round(max(pairs), 2),
                "goal": "<= 2",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
