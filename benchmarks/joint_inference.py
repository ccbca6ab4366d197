"""Joint-inference benchmark (scenario S3 of ``peers.md``): chosen on validation, scored on test,
and served against KubeEdge Sedna's real SDK.

Run from the repository root (5-7 minutes on a shared 2-core machine)::

    .venv/bin/python -m benchmarks.joint_inference            # JSON lines on stdout
    .venv/bin/python -m benchmarks.joint_inference --quick    # fewer calls and re-splits

Fixed scenario: scikit-learn's digits, stratified 50/50 split (``random_state=0``). Edge: 2x2
average pooling (16 features) then ``LogisticRegression(max_iter=1000)``. Cloud:
``MLPClassifier(hidden_layer_sizes=(256,), max_iter=500, random_state=0)`` on the 64 pixels.

1. ``part=calibration`` (out of sample): the training half only fits and validates. Both models
   are cross-fitted (5 stratified folds) so that every training sample has an out-of-fold
   prediction; the miner's threshold is calibrated on those (``calibrate_threshold``), for (a)
   the point mode targeting 99% of cloud-only accuracy and (b) the guaranteed mode (loss <= 1%
   of cloud accuracy with probability >= 0.9). The models fitted on the whole training half then
   answer the test half, which is scored once, with bootstrap 95% intervals. Coverage: 200
   random halvings of the test half, calibrating on one half and scoring on the other.
2. ``part=curve``: accuracy against offload on the test half for every router (a description,
   nothing is chosen from it), with the calibrated points of part 1; the plot goes to
   ``docs/joint_inference_curve.png``.
3. ``part=serving``: throughput like for like against the real Sedna SDK
   (``../shared/peers/sedna-lib`` in ``.venv-sedna``): Sedna's ``JointInference`` against
   Sedna's ``BigModelService`` and ours against ours, one sample per call (Sedna's call), the
   same miner (CrossEntropy) at the threshold of part 1 (a), and both cloud-only. The four
   systems take turns in blocks of 25 calls (Sedna's edges stay running in their own
   processes); the throughput ratios, with bootstrap intervals over blocks, are the headline.
   ``part=recreated`` is the older re-created "Sedna's way" baseline (``benchmarks/baselines``),
   kept as a labelled extra.
4. ``part=miners``: 100k probability vectors, the batch form against the per-sample form
   (decisions checked equal) and against Sedna's per-sample CrossEntropy. Goal: >= 10x.
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# One BLAS thread per process: the client and both servers share 2 cores, and spinning BLAS
# pools would make the models' compute time depend on who else is running.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a file: make ``benchmarks.baselines`` importable
    sys.path.insert(0, str(ROOT))

CURVE_PNG = ROOT / "docs" / "joint_inference_curve.png"
JOB = "digits"
ROUTERS = ("Random", "CrossEntropy", "Confidence", "Margin", "Entropy")


# -- the fixed scenario (shared with the demo) --------------------------------------------------

from examples.demo.digits_cascade import (  # noqa: E402
    FOLDS,
    build_scenario,
    cross_fit,
)


def emit(record: dict[str, Any]) -> None:
    print(json.dumps({"bench": "joint_inference", **record}), flush=True)


# -- part 1: chosen on validation, scored on test -----------------------------------------------

HEADLINE_MINER = "CrossEntropy"  # Sedna's own probability miner: the serving part compares it
MINERS = ("CrossEntropy", "Confidence", "Margin")
TARGET_LOSS = 0.01  # of cloud-only accuracy: the "99% of cloud" goal
DELTA = 0.1


def _bootstrap(
    hard: np.ndarray, edge_ok: np.ndarray, cloud_ok: np.ndarray, reps: int, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile intervals of relative accuracy and offload over test-set resamples."""
    rng = np.random.default_rng(seed)
    n = len(hard)
    joint = np.where(hard, cloud_ok, edge_ok)
    rel, off = np.empty(reps), np.empty(reps)
    for r in range(reps):
        i = rng.integers(0, n, n)
        rel[r] = joint[i].mean() / cloud_ok[i].mean()
        off[r] = hard[i].mean()
    return {
        "relative_accuracy_ci95": np.percentile(rel, [2.5, 97.5]).tolist(),
        "offload_ci95": np.percentile(off, [2.5, 97.5]).tolist(),
    }


def calibration_part(sc: dict[str, Any], resplits: int, reps: int) -> dict[str, Any]:
    from sedna_core.errors import JobError
    from sedna_core.jobs.joint_inference import calibrate_threshold

    oof = cross_fit(sc)
    y_tr, y_te = sc["y_train"], sc["y_test"]
    val_edge_ok = oof["edge"].argmax(1) == y_tr
    val_cloud_ok = oof["cloud"].argmax(1) == y_tr
    edge_p = sc["edge"].predict(sc["x_test"])
    test_edge_ok = edge_p.argmax(1) == y_te
    test_cloud_ok = sc["cloud"].predict(sc["x_test"]).argmax(1) == y_te
    emit(
        {
            "part": "calibration_data",
            "validation": f"out-of-fold predictions on the training half ({FOLDS} folds)",
            "validation_samples": len(y_tr),
            "validation_edge_accuracy": float(val_edge_ok.mean()),
            "validation_cloud_accuracy": float(val_cloud_ok.mean()),
            "test_samples": len(y_te),
            "test_edge_accuracy": float(test_edge_ok.mean()),
            "test_cloud_accuracy": float(test_cloud_ok.mean()),
        }
    )
    modes = {
        "point_99pct": {"max_accuracy_loss": TARGET_LOSS, "mode": "point"},
        "guaranteed_eps1pct_delta0.1": {
            "max_accuracy_loss": TARGET_LOSS,
            "mode": "guaranteed",
            "delta": DELTA,
        },
    }
    points: dict[str, dict[str, Any]] = {}
    for miner in MINERS:
        for label, kw in modes.items():
            cal = calibrate_threshold(miner, oof["edge"], val_edge_ok, val_cloud_ok, **kw)
            hard = cal.miner.mine(edge_p)
            joint = np.where(hard, test_cloud_ok, test_edge_ok)
            record = {
                "part": "calibration",
                "miner": miner,
                "mode": label,
                "params": cal.params,
                "validation_offload": cal.offload,
                "validation_relative_accuracy": cal.relative_accuracy,
                "test_offload": float(hard.mean()),
                "test_accuracy": float(joint.mean()),
                "test_relative_accuracy": float(joint.mean() / test_cloud_ok.mean()),
                **_bootstrap(hard, test_edge_ok, test_cloud_ok, reps),
            }
            emit(record)
            if miner == HEADLINE_MINER:
                points[label] = record
    # coverage: pick on one random half of the test set, score on the other (the audit's check)
    rng = np.random.default_rng(1)
    n = len(y_te)
    reached = {label: 0 for label in modes}
    offloads: dict[str, list[float]] = {label: [] for label in modes}
    refused = 0
    for _ in range(resplits):
        perm = rng.permutation(n)
        pick, score = perm[: n // 2], perm[n // 2 :]
        for label, kw in modes.items():
            try:
                cal = calibrate_threshold(
                    HEADLINE_MINER, edge_p[pick], test_edge_ok[pick], test_cloud_ok[pick], **kw
                )
            except JobError:  # too few samples for the guarantee
                refused += 1
                continue
            hard = cal.miner.mine(edge_p[score])
            joint = np.where(hard, test_cloud_ok[score], test_edge_ok[score])
            reached[label] += joint.mean() >= (1 - TARGET_LOSS) * test_cloud_ok[score].mean()
            offloads[label].append(float(hard.mean()))
    for label in modes:
        emit(
            {
                "part": "calibration_coverage",
                "miner": HEADLINE_MINER,
                "mode": label,
                "resplits": resplits,
                "calibration_samples": n // 2,
                "reached_99pct_of_cloud": reached[label] / resplits,
                "mean_offload": float(np.mean(offloads[label])),
                "refused": refused,
            }
        )
    point = points["point_99pct"]
    goal = {
        "part": "calibration_goal",
        "goal": "(a) >= 99% of cloud-only at <= 30% offload, out of sample",
        "miner": HEADLINE_MINER,
        "test_relative_accuracy": point["test_relative_accuracy"],
        "test_offload": point["test_offload"],
        "met": point["test_relative_accuracy"] >= 0.99 and point["test_offload"] <= 0.30,
    }
    emit(goal)
    return {"points": points, "edge_p": edge_p, "test_edge_ok": test_edge_ok}


# -- part 2: the curve (a description of the test half: nothing is chosen from it) -------


def router_miners(edge_p: np.ndarray) -> dict[str, list[tuple[float, Any]]]:
    """For each router, (threshold, miner) pairs whose offloads span 0..1."""
    from sedna_plugin_hem import (
        ConfidenceFilter,
        CrossEntropyFilter,
        EntropyFilter,
        MarginFilter,
        RandomFilter,
    )

    q = np.linspace(0.0, 1.0, 201)

    def grid(score: np.ndarray, hard_below: bool) -> list[float]:
        cuts = np.unique(np.quantile(score, q))
        ends = [cuts[0] - 1e-9, cuts[-1] + 1e-9]
        return sorted({*cuts.tolist(), *ends}, reverse=not hard_below)

    ce = CrossEntropyFilter().confidence(edge_p)
    ent = EntropyFilter().entropy(edge_p)
    mar = MarginFilter().margin(edge_p)
    return {
        "Random": [(r, RandomFilter(random_ratio=r, seed=0)) for r in np.linspace(0, 1, 51)],
        "CrossEntropy": [
            (t, CrossEntropyFilter(threshold_cross_entropy=t)) for t in grid(ce, True)
        ],
        "Confidence": [(t, ConfidenceFilter(threshold=t)) for t in grid(edge_p.max(1), True)],
        "Margin": [(t, MarginFilter(threshold=t)) for t in grid(mar, True)],
        "Entropy": [(t, EntropyFilter(threshold=t)) for t in grid(ent, False)],
    }


def oracle_curve(edge_ok: np.ndarray, cloud_ok: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Best possible accuracy at each offload: gains first, then neutral samples, losses last."""
    n = len(edge_ok)
    gain = int((cloud_ok & ~edge_ok).sum())
    loss = int((~cloud_ok & edge_ok).sum())
    k = grid * n
    return (edge_ok.sum() + np.minimum(k, gain) - np.maximum(0.0, k - (n - loss))) / n


def curve_part(sc: dict[str, Any], calibrated: dict[str, Any]) -> None:
    """Accuracy against offload on the test half for every router, and the calibrated points.

    A description of the test half: nothing here is chosen on it (the calibrated points come
    from part 1); ``in_sample_offload_for_99pct`` is what sweeping on the test set itself would
    claim, reported only to show the gap."""
    y = sc["y_test"]
    edge_p = sc["edge"].predict(sc["x_test"])
    cloud_p = sc["cloud"].predict(sc["x_test"])
    edge_pred, cloud_pred = edge_p.argmax(1), cloud_p.argmax(1)
    acc_edge, acc_cloud = float((edge_pred == y).mean()), float((cloud_pred == y).mean())
    grid = np.linspace(0.0, 1.0, 101)
    oracle = oracle_curve(edge_pred == y, cloud_pred == y, grid)
    random_line = acc_edge + grid * (acc_cloud - acc_edge)
    emit({"part": "curve", "router": "EdgeOnly", "offload": 0.0, "accuracy": acc_edge})
    emit({"part": "curve", "router": "CloudOnly", "offload": 1.0, "accuracy": acc_cloud})
    oracle_hard = (cloud_pred == y) & (edge_pred != y)
    emit(
        {
            "part": "curve",
            "router": "Oracle",
            "offload": float(oracle_hard.mean()),
            "accuracy": float((np.where(oracle_hard, cloud_pred, edge_pred) == y).mean()),
        }
    )
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for router, pairs in router_miners(edge_p).items():
        points = []
        for threshold, miner in pairs:
            hard = miner.mine(edge_p)
            acc = float((np.where(hard, cloud_pred, edge_pred) == y).mean())
            points.append((float(hard.mean()), acc, float(threshold)))
        points.sort()
        off = np.array([p[0] for p in points])
        acc = np.array([p[1] for p in points])
        curves[router] = (off, acc)
        interp = np.interp(grid, off, acc)
        area = float(np.trapezoid(interp - random_line, grid))
        ceiling = float(np.trapezoid(oracle - random_line, grid))
        emit(
            {
                "part": "curve_summary",
                "router": router,
                **{
                    f"accuracy_at_{int(f * 100)}pct": max(
                        (a for o, a, _ in points if o <= f), default=None
                    )
                    for f in (0.1, 0.2, 0.3)
                },
                "in_sample_offload_for_99pct": _first(points, 0.99 * acc_cloud),
                "apgr_area": area / ceiling if ceiling > 0 else None,
            }
        )
    marks = {
        label: (p["test_offload"], p["test_accuracy"]) for label, p in calibrated["points"].items()
    }
    _plot(curves, acc_edge, acc_cloud, grid, oracle, marks)
    emit({"part": "curve_plot", "plot": str(CURVE_PNG.relative_to(ROOT))})


def _first(points: list[tuple[float, float, float]], level: float) -> float | None:
    reach = [p[0] for p in points if p[1] >= level]
    return min(reach) if reach else None


def _plot(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    acc_edge: float,
    acc_cloud: float,
    grid: np.ndarray,
    oracle: np.ndarray,
    marks: dict[str, tuple[float, float]],
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Two panels: the whole range, and a zoom on 0-50% offload where the routers differ.
    fig, (ax, zoom) = plt.subplots(
        1, 2, figsize=(11.0, 5.6), dpi=110, gridspec_kw={"width_ratios": [1.0, 1.15]}
    )
    # Routers that rank alike overlap: Entropy ranks exactly as CrossEntropy (1 - normalised
    # entropy), Confidence and Margin nearly so. Each gets its own colour, dash and marker; the
    # first of a pair is drawn wide and pale underneath, the second thin on top, and their
    # markers sit at staggered points, so both lines of a pair stay visible where they coincide.
    styles = {
        "Random": {"color": "tab:grey", "linestyle": ":", "marker": None, "linewidth": 1.4},
        "CrossEntropy": {"color": "tab:blue", "linestyle": "-", "marker": "o",
                         "linewidth": 5.0, "alpha": 0.35},
        "Entropy": {"color": "navy", "linestyle": (0, (4, 2)), "marker": "x", "linewidth": 1.3},
        "Confidence": {"color": "tab:green", "linestyle": "-", "marker": "s",
                       "linewidth": 5.0, "alpha": 0.35},
        "Margin": {"color": "darkorange", "linestyle": (0, (1, 1.5)), "marker": "^",
                   "linewidth": 1.6},
    }  # fmt: skip
    labels = {"Entropy": "Entropy (ranks exactly as CrossEntropy)"}
    for panel in (ax, zoom):
        for i, (router, (off, acc)) in enumerate(curves.items()):
            style = {"linewidth": 1.6, **styles.get(router, {})}
            step = max(len(off) // 10, 1)
            panel.plot(
                off * 100,
                acc * 100,
                label=labels.get(router, router),
                markevery=(i * step // 5 % step, step),  # staggered markers
                markersize=5,
                markeredgewidth=1.2,
                fillstyle="none",
                **style,
            )
        panel.plot(grid * 100, oracle * 100, "--", color="black", linewidth=0.8,
                   label="Oracle (ceiling)")  # fmt: skip
        panel.axhline(acc_cloud * 99, color="black", linewidth=0.9, linestyle="-.",
                      label=f"99% of cloud ({acc_cloud * 99:.1f}%)")  # fmt: skip
        panel.axvline(30, color="red", linewidth=1.4, linestyle=(0, (6, 3)),
                      label="30% offload (goal)")  # fmt: skip
        names = {
            "point_99pct": ("calibrated on train (point, 99%): test", "D"),
            "guaranteed_eps1pct_delta0.1": ("calibrated on train (guaranteed): test", "*"),
        }
        for label, (off, acc) in marks.items():
            text, marker = names.get(label, (label, "P"))
            panel.scatter([off * 100], [acc * 100], marker=marker, s=90, color="crimson",
                          zorder=6, label=text)  # fmt: skip
        panel.grid(alpha=0.3)
        panel.set_xlabel("offload to the cloud (% of samples)")
    ax.scatter([0, 100], [acc_edge * 100, acc_cloud * 100], color="black", zorder=5)
    ax.annotate("edge only", (0, acc_edge * 100), textcoords="offset points", xytext=(6, -12))
    ax.annotate("cloud only", (100, acc_cloud * 100), textcoords="offset points", xytext=(-60, 8))
    ax.set_ylabel("accuracy on the test half (%)")
    ax.set_title("whole range", fontsize=9)
    ax.set_ylim(acc_edge * 100 - 3, min(100.5, max(oracle) * 100 + 1))
    zoom.set_xlim(0, 50)
    zoom.set_ylim(acc_edge * 100 - 0.5, acc_cloud * 100 + 1.2)
    zoom.set_title("zoom: 0-50% offload", fontsize=9)
    handles, names_ = zoom.get_legend_handles_labels()  # one legend, below both panels
    fig.legend(handles, names_, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Joint inference on digits: edge LR(4x4) + cloud MLP(8x8)", fontsize=11)
    fig.tight_layout(rect=(0, 0.11, 1, 1))
    CURVE_PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CURVE_PNG)
    plt.close(fig)


# -- part 3: serving, like for like against the real Sedna SDK ---------------------------------

SEDNA_PYTHON = ROOT / ".venv-sedna" / "bin" / "python"
SEDNA_LIB = ROOT.parent / "shared" / "peers" / "sedna-lib"

# Sedna's programs: its own classes, the scenario's models in Sedna's estimator style
# (load + predict; Sedna's miners judge one flat probability vector per request).
SEDNA_CLOUD = """
import numpy as np
from examples.demo.digits_cascade import build_scenario
from sedna.core.joint_inference import BigModelService

class Cloud:
    def __init__(self):
        self.model = build_scenario()["cloud"]
    def load(self, model_url=None, **kwargs):
        pass
    def predict(self, data, **kwargs):
        return self.model.predict(np.asarray(data, dtype=np.float64)).tolist()

BigModelService(estimator=Cloud).start()
"""

SEDNA_EDGE = """
import json, os, sys, time
import numpy as np
from examples.demo.digits_cascade import edge_model, load_split
from sedna.core.joint_inference import JointInference

x_train, x_test, y_train, y_test = load_split()
model = edge_model(x_train, y_train)

class Edge:
    def load(self, model_url=None, **kwargs):
        pass
    def predict(self, data, **kwargs):
        return model.predict(data)[0].tolist()

ji = JointInference(estimator=Edge, hard_example_mining=json.loads(os.environ["BENCH_HEM"]))
print("READY", flush=True)
for line in sys.stdin:  # one block of sample indices per line; one result line per block
    times, hard, right = [], 0, 0
    for i in json.loads(line):
        t0 = time.perf_counter()
        is_hard, final, edge, cloud = ji.inference(x_test[i : i + 1])
        times.append(time.perf_counter() - t0)
        hard += bool(is_hard)
        right += int(np.argmax(final) == y_test[i])
    print("RESULT " + json.dumps({"times": times, "hard": hard, "right": right}), flush=True)
"""


def _sedna_env(**extra: Any) -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        PYTHONPATH=f"{SEDNA_LIB}{os.pathsep}{ROOT}",
        PYTHONUNBUFFERED="1",
        OMP_NUM_THREADS="1",
        OPENBLAS_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        BACKEND_TYPE="SKLEARN",
        BIG_MODEL_BIND_IP="127.0.0.1",
        BIG_MODEL_IP="127.0.0.1",
        JOB_NAME=JOB,
        LC_SERVER="http://127.0.0.1:9",  # no local controller: reports fail fast, as in a test
        LC_PERIOD="3600",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _start_sedna_cloud(model_file: Path) -> tuple[Any, int]:
    import queue
    import socket
    import subprocess
    import threading

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [str(SEDNA_PYTHON), "-c", SEDNA_CLOUD],
        env=_sedna_env(BIG_MODEL_BIND_PORT=port, MODEL_URL=model_file),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keep draining: uvicorn's access log would otherwise fill the pipe
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    while True:
        line = lines.get(timeout=180)
        if line is None:
            raise RuntimeError("Sedna's BigModelService did not start:\n" + "".join(seen))
        seen.append(line)
        if "Uvicorn running on" in line:
            return proc, port


class _SednaEdge:
    """Sedna's ``JointInference`` in its own venv, kept running: each :meth:`run` sends one
    block of sample indices and reads back its timings (so blocks of the four systems can be
    interleaved finely without paying Sedna's start-up per block)."""

    def __init__(self, hem: dict[str, Any], port: int, model_file: Path) -> None:
        import subprocess

        self.proc = subprocess.Popen(
            [str(SEDNA_PYTHON), "-c", SEDNA_EDGE],
            env=_sedna_env(BIG_MODEL_PORT=port, MODEL_URL=model_file, BENCH_HEM=json.dumps(hem)),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # Sedna's own logging
            text=True,
        )
        self._expect("READY")

    def _expect(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"Sedna's JointInference exited ({self.proc.wait()}) before {prefix}")

    def run(self, calls: list[int]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(calls) + "\n")
        self.proc.stdin.flush()
        return json.loads(self._expect("RESULT "))  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(30)
        except Exception:
            self.proc.kill()


def _run_ours(job: Any, x: np.ndarray, y: np.ndarray, calls: list[int]) -> dict[str, Any]:
    times, hard, right = [], 0, 0
    for i in calls:
        t0 = time.perf_counter()
        is_hard, final, _, _ = job.inference(x[i : i + 1])
        times.append(time.perf_counter() - t0)
        hard += bool(is_hard)
        right += int(np.argmax(final) == y[i])
    return {"times": times, "hard": hard, "right": right}


def serving_part(sc: dict[str, Any], threshold: float, n_calls: int, block: int) -> None:
    """Ours against Sedna's real SDK, one sample per call: joint at the same miner and threshold,
    and cloud-only; each cloud in its own process, each Sedna edge in its own; the four systems
    take turns in blocks of ``block`` calls, so all see the same background load."""
    import tempfile

    from sedna_core.jobs.joint_inference import JointInference

    if not (SEDNA_PYTHON.exists() and (SEDNA_LIB / "sedna").is_dir()):
        emit({"part": "serving", "skipped": f"no Sedna SDK at {SEDNA_LIB} with {SEDNA_PYTHON}"})
        return
    x, y = sc["x_test"], sc["y_test"]
    calls = [i % len(x) for i in range(n_calls)]
    blocks = [calls[lo : lo + block] for lo in range(0, n_calls, block)]
    miner = {"method": "CrossEntropy", "param": {"threshold_cross_entropy": threshold}}
    systems = {
        "sedna_joint": miner,
        "ours_joint": miner,
        "sedna_cloud_only": {"method": "CloudOnly"},
        "ours_cloud_only": {"method": "CloudOnly"},
    }
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in systems}
    with tempfile.TemporaryDirectory() as tmp:
        model_file = Path(tmp) / "model.bin"  # Sedna insists that MODEL_URL exists
        model_file.write_bytes(b"")
        sedna_proc, sedna_port = _start_sedna_cloud(model_file)
        ours_proc, ours_stop, ours_port = _in_process(_serve_ours)
        url = f"http://127.0.0.1:{ours_port}"
        runners: dict[str, Callable[[list[int]], dict[str, Any]]] = {}
        closers: list[Callable[[], None]] = []
        try:
            for name, hem in systems.items():
                if name.startswith("sedna"):
                    edge = _SednaEdge(hem, sedna_port, model_file)
                    closers.append(edge.close)
                    runners[name] = edge.run
                else:
                    job = JointInference(sc["edge"], hem, cloud_url=url, job_name=JOB)
                    closers.append(job.close)
                    runners[name] = functools.partial(_run_ours, job, x, y)
                runners[name](calls[:10])  # warm-up: connections, caches
            for calls_block in blocks:
                for name, run in runners.items():
                    results[name].append(run(calls_block))
        finally:
            for close in closers:
                close()
            sedna_proc.terminate()
            sedna_proc.wait(30)
            ours_stop.set()
            ours_proc.join(30)
            if ours_proc.is_alive():
                ours_proc.terminate()
    # per block: seconds spent; the same blocks (same samples) for every system
    spent = {name: np.array([np.sum(o["times"]) for o in outs]) for name, outs in results.items()}
    p50: dict[str, float] = {}
    for name, outs in results.items():
        times = np.concatenate([o["times"] for o in outs])
        p50[name] = float(np.percentile(times, 50))
        emit(
            {
                "part": "serving",
                "system": name,
                "miner": systems[name]["method"],
                "threshold": threshold if systems[name] is miner else None,
                "calls": len(times),
                "samples_per_call": 1,
                "p50_ms": p50[name] * 1e3,
                "p95_ms": float(np.percentile(times, 95) * 1e3),
                "samples_per_s": len(times) / float(spent[name].sum()),
                "offload": sum(o["hard"] for o in outs) / len(times),
                "accuracy": sum(o["right"] for o in outs) / len(times),
            }
        )
    rng = np.random.default_rng(0)
    resample = rng.integers(0, len(blocks), (2000, len(blocks)))  # paired: same blocks for both
    pairs = [
        ("ours_joint", "sedna_joint"),
        ("ours_cloud_only", "sedna_cloud_only"),
        ("ours_joint", "sedna_cloud_only"),
    ]
    for ours, theirs in pairs:
        # throughput ratio = Sedna's seconds / ours for the same calls
        boot = spent[theirs][resample].sum(1) / spent[ours][resample].sum(1)
        emit(
            {
                "part": "serving_ratio",
                "ours": ours,
                "sedna": theirs,
                "throughput_ratio": float(spent[theirs].sum() / spent[ours].sum()),
                "throughput_ratio_ci95": np.percentile(boot, [2.5, 97.5]).tolist(),
                # the median call is less exposed than the mean to load spikes of a shared host
                "p50_latency_ratio_sedna_over_ours": p50[theirs] / p50[ours],
                "blocks": len(blocks),
                "calls_per_block": len(blocks[0]),
            }
        )


# -- extra: the re-created "Sedna's way" baseline (benchmarks/baselines) -------------------


def _serve_sedna(ready: Any, stop: Any) -> None:
    from benchmarks.baselines.sedna_ji_service import SednaInferenceServer

    # uvicorn's access log (Sedna runs it at "info") is still formatted and written, elsewhere
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)

    sc = build_scenario()
    cloud = sc["cloud"]
    server = SednaInferenceServer(lambda data: cloud.predict(data).tolist(), servername=JOB)
    server.start()
    ready.put(server.http_port)
    stop.wait()
    server.stop()


def _serve_ours(ready: Any, stop: Any) -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from sedna_core.jobs.joint_inference import BigModelService

    sc = build_scenario()
    with BigModelService(sc["cloud"], job_name=JOB, port=0, input_shape=(64,)) as svc:
        ready.put(svc.port)
        stop.wait()


def _in_process(target: Callable[[Any, Any], None]) -> tuple[Any, Any, int]:
    ctx = mp.get_context("spawn")
    ready, stop = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=target, args=(ready, stop), daemon=True)
    proc.start()
    port = int(ready.get(timeout=120))
    return proc, stop, port


def _interleaved(
    systems: dict[str, Callable[[np.ndarray], Any]], batches: list[np.ndarray], block: int = 25
) -> dict[str, np.ndarray]:
    """Per-call seconds of each system. Systems take turns in blocks of ``block`` calls, so all
    see the same background load, while none pays for the aftermath of another's last call."""
    for x in batches[:10]:  # warm-up: connections, caches
        for call in systems.values():
            call(x)
    times = {name: np.empty(len(batches)) for name in systems}
    for lo in range(0, len(batches), block):
        for name, call in systems.items():
            for i in range(lo, min(lo + block, len(batches))):
                t0 = time.perf_counter()
                call(batches[i])
                times[name][i] = time.perf_counter() - t0
    return times


def _stats(times: np.ndarray, batch: int) -> dict[str, float]:
    return {
        "p50_ms": float(np.percentile(times, 50) * 1e3),
        "p95_ms": float(np.percentile(times, 95) * 1e3),
        "samples_per_s": batch * len(times) / float(times.sum()),
    }


def recreated_part(sc: dict[str, Any], op: dict[str, Any] | None, calls: dict[int, int]) -> None:
    """The older comparison against Sedna's way re-created with FastAPI + requests (a labelled
    extra: the headline is :func:`serving_part`, against the real SDK)."""
    from benchmarks.baselines.sedna_hem import SednaCrossEntropyFilter
    from benchmarks.baselines.sedna_ji_client import SednaJointInference
    from sedna_core import wire
    from sedna_core.jobs.joint_inference import JointInference

    x_test, y_test = sc["x_test"], sc["y_test"]
    edge, cloud = sc["edge"], sc["cloud"]
    sedna_proc, sedna_stop, sedna_port = _in_process(_serve_sedna)
    ours_proc, ours_stop, ours_port = _in_process(_serve_ours)
    url = f"http://127.0.0.1:{ours_port}"
    ce = op["threshold"] if op is not None else None  # calibrated on the training half
    jobs: list[JointInference] = []
    try:
        for b, n_calls in calls.items():
            starts = [(i * b) % (len(x_test) - b + 1) for i in range(n_calls)]
            batches = [x_test[s : s + b] for s in starts]
            sedna = SednaJointInference(
                lambda x: edge.predict(x).tolist(), lambda _: True, JOB, "127.0.0.1", sedna_port
            )
            ours_cloud = JointInference(edge, "CloudOnly", cloud_url=url, job_name=JOB)
            jobs.append(ours_cloud)
            systems: dict[str, Callable[[np.ndarray], Any]] = {
                "edge_compute": edge.predict,
                "cloud_compute": cloud.predict,
                "sedna_cloud_only": sedna.inference,
                "ours_cloud_only": ours_cloud.inference_batch,
            }
            finals: list[Any] = []
            if op is not None:
                miner = {"method": op["router"], "param": _threshold_param(op)}
                ours_joint = JointInference(edge, miner, cloud_url=url, job_name=JOB)
                jobs.append(ours_joint)
                systems["ours_joint"] = _collecting(ours_joint, finals)
            if b == 1 and ce is not None:  # Sedna's own router on its own terms: one sample a call
                sedna_joint = SednaJointInference(
                    lambda x: edge.predict(x)[0].tolist(),
                    SednaCrossEntropyFilter(ce),
                    JOB,
                    "127.0.0.1",
                    sedna_port,
                )
                systems["sedna_joint_CrossEntropy"] = sedna_joint.inference
            times = _interleaved(systems, batches)
            compute = float(np.median(times["edge_compute"]) + np.median(times["cloud_compute"]))
            emit(
                {
                    "part": "recreated_compute",
                    "batch": b,
                    "edge_p50_ms": float(np.median(times["edge_compute"]) * 1e3),
                    "cloud_p50_ms": float(np.median(times["cloud_compute"]) * 1e3),
                    "json_request_bytes": len(json.dumps({"data": batches[0].tolist()})),
                    "binary_request_bytes": len(wire.encode({"data": batches[0]})),
                }
            )
            rows = {
                name: _stats(t, b) for name, t in times.items() if not name.endswith("_compute")
            }
            for name in ("sedna_cloud_only", "ours_cloud_only"):
                rows[name]["overhead_ms"] = rows[name]["p50_ms"] - compute * 1e3
            if op is not None:
                stats = ours_joint.stats
                rows["ours_joint"].update(
                    router=op["router"],
                    offload=stats.upload_ratio,
                    accuracy=_accuracy_over(finals[10:], starts, y_test, b),
                    cloud_failures=stats.cloud_failure_number,
                )
            for name, row in rows.items():
                emit({"part": "recreated", "system": name, "batch": b, **row})
            ratio = rows["ours_cloud_only"]["overhead_ms"] / rows["sedna_cloud_only"]["overhead_ms"]
            goal: dict[str, Any] = {
                "part": "recreated_goal",
                "batch": b,
                "overhead_ours_over_sedna": ratio,
                "overhead_goal_met": ratio <= 0.5,
            }
            if op is not None:
                speedup = (
                    rows["ours_joint"]["samples_per_s"] / rows["sedna_cloud_only"]["samples_per_s"]
                )
                goal["throughput_ours_joint_over_sedna_cloud_only"] = speedup
                goal["throughput_goal_met"] = speedup >= 3
            emit(goal)
    finally:
        for job in jobs:
            job.close()
        for stop, proc in ((sedna_stop, sedna_proc), (ours_stop, ours_proc)):
            stop.set()
            proc.join(30)
            if proc.is_alive():
                proc.terminate()


def _collecting(job: Any, finals: list[Any]) -> Callable[[np.ndarray], None]:
    def call(x: np.ndarray) -> None:
        finals.append(job.inference_batch(x)[1])

    return call


def _threshold_param(op: dict[str, Any]) -> dict[str, str]:
    key = "threshold_cross_entropy" if op["router"] == "CrossEntropy" else "threshold"
    return {key: repr(op["threshold"])}


def _accuracy_over(finals: list[np.ndarray], starts: list[int], y: np.ndarray, b: int) -> float:
    right = total = 0
    for final, s in zip(finals, starts, strict=True):
        right += int((np.asarray(final).argmax(1) == y[s : s + b]).sum())
        total += b
    return right / total


# -- part 4: miners, batch against per-sample ---------------------------------------------------


def miners_part(n: int) -> None:
    from sedna_plugin_hem import (
        ConfidenceFilter,
        CrossEntropyFilter,
        EntropyFilter,
        MarginFilter,
        RandomFilter,
    )

    from benchmarks.baselines.sedna_hem import SednaCrossEntropyFilter

    probs = np.random.default_rng(0).dirichlet(np.ones(10), size=n)
    makers: dict[str, Callable[[], Any]] = {
        "CrossEntropy": lambda: CrossEntropyFilter(0.5),
        "Confidence": lambda: ConfidenceFilter(0.8),
        "Margin": lambda: MarginFilter(0.3),
        "Entropy": lambda: EntropyFilter(1.0),
        "Random": lambda: RandomFilter(0.3, seed=0),
    }
    for name, make in makers.items():
        t_batch = float("inf")
        for _ in range(3):  # best of three: the batch form takes milliseconds
            batch_miner = make()
            t0 = time.perf_counter()
            batch = batch_miner.mine(probs)
            t_batch = min(t_batch, time.perf_counter() - t0)
        sample_miner = make()
        t0 = time.perf_counter()
        single = [sample_miner(p) for p in probs]
        t_single = time.perf_counter() - t0
        record = {
            "part": "miners",
            "miner": name,
            "vectors": n,
            "batch_per_s": n / t_batch,
            "per_sample_per_s": n / t_single,
            "speedup": t_single / t_batch,
            "decisions_equal": batch.tolist() == single,
            "goal_met": t_single / t_batch >= 10,
        }
        if name == "CrossEntropy":
            sedna = SednaCrossEntropyFilter(0.5)
            rows = probs.tolist()
            t0 = time.perf_counter()
            sedna_dec = [sedna(r) for r in rows]
            t_sedna = time.perf_counter() - t0
            record.update(
                sedna_per_sample_per_s=n / t_sedna,
                speedup_over_sedna=t_sedna / t_batch,
                mismatches_with_sedna=int((np.array(sedna_dec) != batch).sum()),
            )
        emit(record)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    args = parser.parse_args(argv)
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    started = time.perf_counter()
    sc = build_scenario()
    calibrated = calibration_part(
        sc, resplits=50 if args.quick else 200, reps=200 if args.quick else 2000
    )
    curve_part(sc, calibrated)
    threshold = float(calibrated["points"]["point_99pct"]["params"]["threshold_cross_entropy"])
    serving_part(sc, threshold, n_calls=60 if args.quick else 1500, block=20 if args.quick else 25)
    op = {"router": HEADLINE_MINER, "threshold": threshold}
    recreated_part(sc, op, {1: 60, 64: 20} if args.quick else {1: 600, 64: 200})
    miners_part(10_000 if args.quick else 100_000)
    emit({"part": "done", "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
