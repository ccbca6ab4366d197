"""The loop runner (API and the `sedna incremental` command) and its streams."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from sedna_core.config.incremental import IncrementalConfig
from sedna_core.errors import DataSourceError
from sedna_core.jobs.incremental import (
    IncrementalLearning,
    LoopRunner,
    csv_stream,
    sea_drift_stream,
)
from sedna_core.jobs.incremental._loop import drift_summary


def test_il_loop_recovers_from_drift(tmp_path, il_pm) -> None:
    pm, _ = il_pm
    job = IncrementalLearning(
        LogisticRegression(C=0.3),
        {"method": "Margin", "param": {"threshold": 0.75}},
        config=IncrementalConfig.from_env({}),
        workspace=tmp_path / "ws",
        deploy_rule="accuracy_delta > 0.02 and paired_z > 2",
        min_eval_size=50,
        train_trigger="num_of_samples >= 25",
        mine_proba=True,
        plugin_manager=pm,
    )
    windows, decisions = [], []
    runner = LoopRunner(
        job,
        explore=0.01,
        on_window=windows.append,
        on_decision=lambda pos, d: decisions.append((pos, d)),
    )
    stream = sea_drift_stream(5000, drift_at=2500, seed=1)
    first = [next(stream) for _ in range(10)]
    runner.bootstrap(np.concatenate([b[0] for b in first]), np.concatenate([b[1] for b in first]))
    report = runner.run(stream)
    assert (
        [w.start for w in report.windows]
        == list(range(500, 5000, 500))
        == [w.start for w in windows]
    )
    summary = report.summary(drift_at=2500)
    assert summary["pre_drift_accuracy"] > 0.97
    assert summary["lowest_after_drift"] < summary["pre_drift_accuracy"]
    deployed = [pos for pos, d in decisions if d.deployed]
    assert any(pos > 2500 for pos in deployed)  # the drift was answered by a deployment
    assert summary["recovery_samples"] is not None and summary["recovery_samples"] <= 2000
    assert summary["label_share"] < 0.5 and report.labels_used < 4500
    assert len(job.decisions()) == len(report.decisions)


def test_il_drift_summary() -> None:
    acc = [0.99, 0.99, 0.80, 0.90, 0.95, 0.99]
    s = drift_summary(acc, [0, 100, 200, 300, 400, 500], 200)
    assert s["pre_drift_accuracy"] == 0.99 and s["lowest_after_drift"] == 0.8
    assert s["recovery_samples"] == 300  # back to 0.9405 in the window ending at 500
    assert drift_summary([0.9, 0.9, 0.9], [0, 100, 200], 100)["recovery_samples"] == 0
    assert drift_summary([0.9, 0.5, 0.5], [0, 100, 200], 100)["recovery_samples"] is None


def test_il_csv_stream(tmp_path: Path) -> None:
    f = tmp_path / "s.csv"
    f.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,1\n")
    batches = list(csv_stream(f, label_column="label", batch_size=2))
    assert [b[0].shape for b in batches] == [(2, 2), (1, 2)]
    assert batches[0][1].dtype.kind == "i" and batches[1][1].tolist() == [1]
    g = tmp_path / "n.csv"
    g.write_text("0,1.5,x\n1,2.5,y\n")
    ((x, y),) = list(csv_stream(g, label_column=-1))
    assert y.tolist() == ["x", "y"] and x.tolist() == [[0, 1.5], [1, 2.5]]
    g.write_text("0,1\n1\n")
    with pytest.raises(DataSourceError, match="columns"):
        list(csv_stream(g))


def _sedna(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [sys.executable, "-m", "sedna_core.cli.main", "incremental", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def test_il_cli_runs_the_loop_in_a_subprocess(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    run = _sedna("run", "--samples", "4000", "--json", "--workspace", str(ws))
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"bootstrap", "window", "decision", "summary"} <= kinds
    summary = events[-1]
    assert summary["event"] == "summary" and summary["samples"] == 3000
    assert summary["deploys"] >= 1 and summary["pre_drift_accuracy"] > 0.95
    status = _sedna("status", "--workspace", str(ws), "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["serving"] == doc["history"][-1] and len(doc["decisions"]) >= 2


def test_il_cli_on_a_csv_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 10, size=(1500, 3))
    y = (x[:, 0] + x[:, 1] > 8).astype(int)
    f = tmp_path / "stream.csv"
    np.savetxt(f, np.column_stack([x, y]), delimiter=",", header="a,b,c,y", comments="")
    run = _sedna("run", "--stream", str(f), "--label-column", "y", "--bootstrap", "500")
    assert run.returncode == 0, run.stderr
    assert "summary: samples=1000" in run.stdout
    bad = _sedna("status", "--workspace", str(tmp_path / "nowhere"))
    assert bad.returncode == 1 and "no workspace" in bad.stderr
