"""Lifelong inference as the number of tasks grows (issue 20).

Tasks are defined by an attribute (``TaskDefinitionByDataAttr`` on ``site``), one
LogisticRegression per task, trained locally (no knowledge-base server: this measures
inference routing, not the service). Then ``--rows`` rows spread over all tasks go through
``LifelongLearning.inference`` in one call, and rows/s is compared between ``--small`` tasks
(the peer: the same job with few tasks, same run) and ``--large`` tasks. ``--repeats`` runs
give the range.

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


def measure(tasks: int, rows: int, repeats: int, tmp: str) -> dict:
    x_train, y_train = make_tasks(tasks, max(20, 2000 // tasks), seed=0)
    job = LifelongLearning(
        estimator=LogisticRegression(max_iter=200),
        task_definition={"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["site"]}},
        output_url=f"{tmp}/ll-{tasks}",
    )
    t0 = time.perf_counter()
    job.train((x_train, y_train))
    train_s = time.perf_counter() - t0
    per_task = -(-rows // tasks)
    x_test, y_test = make_tasks(tasks, per_task, seed=1)
    pick = np.random.default_rng(2).permutation(len(y_test))[:rows]
    x_test = {k: v[pick] for k, v in x_test.items()}
    y_test = y_test[pick]
    job.inference(x_test)  # warm: models loaded once
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        result, _, _ = job.inference(x_test)
        rates.append(rows / (time.perf_counter() - t0))
    return {
        "bench": "lifelong_scale",
        "tasks": tasks,
        "rows": rows,
        "train_s": round(train_s, 1),
        "rows_per_s": round(statistics.median(rates)),
        "rows_per_s_min": round(min(rates)),
        "rows_per_s_max": round(max(rates)),
        "accuracy": round(float((np.asarray(result) == y_test).mean()), 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=5)
    parser.add_argument("--large", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        small = measure(args.small, args.rows, args.repeats, tmp)
        print(json.dumps(small), flush=True)
        large = measure(args.large, args.rows, args.repeats, tmp)
        print(json.dumps(large), flush=True)
    print(
        json.dumps(
            {
                "bench": "lifelong_scale_ratio",
                "tasks": [args.small, args.large],
                "slowdown": round(small["rows_per_s"] / large["rows_per_s"], 2),
                "goal": "<= 2",
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
