"""Threshold calibration: the guarantee's coverage on a problem with known error rates, the point
and offload targets, refusals, the job's ``calibrate`` against a real service, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sedna_plugin_hem import ConfidenceFilter, EntropyFilter, IBTFilter

from sedna_core.cli.main import main
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs.joint_inference import (
    JointInference,
    calibrate_threshold,
    min_validation_samples,
)
from sedna_core.jobs.joint_inference._calibration import correct_answers

CLOUD_ACC = 0.95


def draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A problem whose rates are known exactly: the edge's top probability c ~ U(0.5, 1) is
    calibrated (the edge is right with probability c); the cloud is right with probability 0.95,
    independently. A cut t of Confidence keeps the samples with c >= t on the edge."""
    c = rng.uniform(0.5, 1.0, n)
    return np.stack([c, 1 - c], axis=1), rng.random(n) < c, rng.random(n) < CLOUD_ACC


def harmful_rate(t: float) -> float:
    """P(kept on the edge, edge wrong, cloud right) = int_t^1 (1 - c) 0.95 dc / 0.5."""
    t = min(max(t, 0.5), 1.0)
    return CLOUD_ACC * (1 - t) ** 2


def accuracy_loss(t: float) -> float:
    """Cloud-only accuracy minus joint accuracy = int_t^1 (0.95 - c) dc / 0.5."""
    t = min(max(t, 0.5), 1.0)
    return 2 * (CLOUD_ACC * (1 - t) - (1 - t * t) / 2)


@pytest.mark.parametrize("relative", [False, True])
def test_guarantee_covers_at_least_1_minus_delta(relative, hem_pm):
    rng = np.random.default_rng(20261202)
    eps, delta, draws = 0.01, 0.1, 300
    allowed = eps * CLOUD_ACC if relative else eps
    harm_ok = loss_ok = 0
    offloads = []
    for _ in range(draws):
        p, edge_ok, cloud_ok = draw(rng, 1500)
        cal = calibrate_threshold(
            "Confidence",
            p,
            edge_ok,
            cloud_ok,
            max_accuracy_loss=eps,
            mode="guaranteed",
            delta=delta,
            relative=relative,
        )
        t = cal.params["threshold"]
        harm_ok += harmful_rate(t) <= allowed  # what the bound is about
        loss_ok += accuracy_loss(t) <= allowed  # what users care about (at most the former)
        offloads.append(cal.offload)
        assert cal.bound is not None and cal.bound <= cal.allowed
    assert harm_ok / draws >= 1 - delta
    assert loss_ok / draws >= 1 - delta
    # it is not vacuous: it keeps a good share of the samples on the edge
    assert np.mean(offloads) < 0.95


def test_point_mode_lands_near_the_target_and_offload_mode_within_budget(hem_pm):
    p, edge_ok, cloud_ok = draw(np.random.default_rng(1), 200_000)
    cal = calibrate_threshold(
        "Confidence", p, edge_ok, cloud_ok, max_accuracy_loss=0.01, relative=False
    )
    assert cal.mode == "point" and cal.accuracy_loss <= 0.01 + 1e-9
    assert accuracy_loss(cal.params["threshold"]) == pytest.approx(0.01, abs=0.002)
    cal = calibrate_threshold("Confidence", p, edge_ok, cloud_ok, target_offload=0.3)
    assert 0.299 <= cal.offload <= 0.3
    assert cal.params["threshold"] == pytest.approx(0.65, abs=0.005)  # P(c < t) = 0.3


@pytest.mark.parametrize("miner", ["Confidence", "CrossEntropy", "Margin", "Entropy"])
def test_the_calibrated_miner_makes_the_validation_decisions(miner, hem_pm):
    rng = np.random.default_rng(2)
    p = rng.dirichlet(np.ones(5) * 0.5, size=2000)
    p[:5] = [[0.2] * 5, [1, 0, 0, 0, 0], [np.nan] * 5, [0.2] * 5, [0.5, 0.5, 0, 0, 0]]  # ties
    edge_ok, cloud_ok = rng.random(2000) < p.max(1), rng.random(2000) < 0.9
    for kw in ({"target_offload": 0.25}, {"max_accuracy_loss": 0.02}):
        cal = calibrate_threshold(miner, p, edge_ok, cloud_ok, **kw)
        hard = cal.miner.mine(p)
        assert hard.mean() == pytest.approx(cal.offload, abs=1e-12)
        assert np.where(hard, cloud_ok, edge_ok).mean() == pytest.approx(cal.accuracy, abs=1e-12)


def test_entropy_keeps_its_direction(hem_pm):
    p = np.array([[0.99, 0.01], [0.6, 0.4], [0.5, 0.5]])
    cal = calibrate_threshold(
        EntropyFilter(), p, [True, True, False], [True, True, True], target_offload=0.34
    )
    assert cal.miner.mine(p).tolist() == [False, False, True]


def test_refusals(hem_pm):
    p, edge_ok, cloud_ok = draw(np.random.default_rng(3), 100)
    need = min_validation_samples(0.01 * 0.9, 0.05)
    with pytest.raises(JobError, match=r"too little validation data.*needs at least \d+"):
        calibrate_threshold(
            "Confidence", p, edge_ok, cloud_ok, max_accuracy_loss=0.01, mode="guaranteed"
        )
    assert min_validation_samples(0.01, 0.1) == 230  # ln(0.1) / ln(0.99) = 229.1
    assert need > 300
    with pytest.raises(ConfigError, match="exactly one"):
        calibrate_threshold("Confidence", p, edge_ok, cloud_ok)
    with pytest.raises(ConfigError, match="exactly one"):
        calibrate_threshold(
            "Confidence", p, edge_ok, cloud_ok, target_offload=0.3, max_accuracy_loss=0.01
        )
    with pytest.raises(ConfigError, match="mode"):
        calibrate_threshold(
            "Confidence", p, edge_ok, cloud_ok, target_offload=0.3, mode="guaranteed"
        )
    with pytest.raises(ConfigError, match="max_accuracy_loss"):
        calibrate_threshold("Confidence", p, edge_ok, cloud_ok, max_accuracy_loss=1.5)
    with pytest.raises(ConfigError, match="threshold to calibrate"):
        calibrate_threshold(IBTFilter(), p, edge_ok, cloud_ok, target_offload=0.3)
    with pytest.raises(JobError, match="one entry per sample"):
        calibrate_threshold("Confidence", p, edge_ok[:50], cloud_ok, target_offload=0.3)


def test_correct_answers_reads_labels_and_vectors():
    y = np.array([0, 2, 1])
    assert correct_answers(np.array([0, 2, 2]), y).tolist() == [True, True, False]
    probs = np.eye(3)[[0, 1, 1]]
    assert correct_answers(probs, y).tolist() == [True, False, True]
    assert correct_answers([[1, 0, 0], [0, 0, 1], [0, 1, 0]], y).all()


def test_job_calibrate_asks_the_cloud_and_applies(serve, models, hem_pm):
    svc = serve()
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1200, 8))
    y = models.cloud.predict(x).argmax(1)
    flip = rng.random(1200) < 0.03  # the cloud is 97% right
    y[flip] = (y[flip] + 1) % 3
    with JointInference(models.edge, ConfidenceFilter(0.5), cloud_url=svc.url, job_name="ji") as ji:
        cal = ji.calibrate(x[:800], y[:800], max_accuracy_loss=0.05, mode="guaranteed")
        assert ji.hard_example_mining is cal.miner
        assert cal.edge_accuracy < cal.cloud_accuracy
        hard = ji.inference_batch(x[:800])[0]
        assert hard.mean() == pytest.approx(cal.offload)
        # the cloud's answers can come from elsewhere; apply=False leaves the job's miner
        again = ji.calibrate(
            x[:800],
            y[:800],
            target_offload=0.2,
            cloud_results=models.cloud.predict(x[:800]),
            apply=False,
        )
        assert ji.hard_example_mining is cal.miner and again.offload <= 0.2


def test_job_calibrate_without_a_cloud_says_what_to_do(dead_port, models, hem_pm):
    with (
        JointInference(
            models.edge, "Confidence", big_model_ip="127.0.0.1", big_model_port=dead_port
        ) as ji,
        pytest.raises(JobError, match="cloud_results="),
    ):
        ji.calibrate(np.zeros((10, 8)), np.zeros(10), target_offload=0.3)


@pytest.fixture
def val_npz(tmp_path):
    p, edge_ok, cloud_ok = draw(np.random.default_rng(5), 3000)
    path = tmp_path / "val.npz"
    np.savez(path, miner_input=p, edge_correct=edge_ok, cloud_correct=cloud_ok)
    labels = tmp_path / "labels.npz"
    y = np.zeros(3000, dtype=int)
    np.savez(
        labels, miner_input=p, edge=np.where(edge_ok, 0, 1), cloud=np.where(cloud_ok, 0, 1), y=y
    )
    small = tmp_path / "small.npz"
    np.savez(small, miner_input=p[:100], edge_correct=edge_ok[:100], cloud_correct=cloud_ok[:100])
    return path, labels, small


def test_cli_both_modes_and_refusal(val_npz, capsys, hem_pm):
    path, labels, small = val_npz
    for mode in ("point", "guaranteed"):
        assert main(["calibrate", str(path), "--max-accuracy-loss", "0.01", "--mode", mode]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["mode"] == mode and out["HEM_NAME"] == "Confidence"
        assert json.loads(out["HEM_PARAMETERS"])[0]["key"] == "threshold"
    assert out["bound"] <= out["allowed"]
    assert main(["calibrate", str(labels), "--offload", "0.3", "--miner", "Margin"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target"] == "offload" and out["offload"] <= 0.3 and out["miner"] == "Margin"
    code = main(["calibrate", str(small), "--max-accuracy-loss", "0.01", "--mode", "guaranteed"])
    err = capsys.readouterr().err
    assert code == 2 and "too little validation data" in err and err.count("\n") == 1
    assert main(["calibrate", str(path / "missing.npz"), "--offload", "0.3"]) == 2
    assert "cannot read" in capsys.readouterr().err
