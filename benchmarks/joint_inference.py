"""Joint-inference benchmark (scenario S3 of ``peers.md``): ours against Sedna's way.

Run from the repository root (about 1-2 minutes on 2 cores)::

    .venv/bin/python -m benchmarks.joint_inference            # JSON lines on stdout
    .venv/bin/python -m benchmarks.joint_inference --quick    # fewer calls, a smoke run

Fixed scenario: scikit-learn's digits, stratified 50/50 split (``random_state=0``). Edge: 2x2
average pooling (16 features) then ``LogisticRegression(max_iter=1000)``. Cloud:
``MLPClassifier(hidden_layer_sizes=(256,), max_iter=500, random_state=0)`` on the 64 pixels.

1. ``part=curve``: accuracy against offload ratio for edge-only, cloud-only, random routing,
   CrossEntropy, Confidence, Margin, Entropy (thresholds swept) and the oracle; the plot goes to
   ``docs/joint_inference_curve.png``. Goal: 99% of cloud-only accuracy at <= 30% offload.
2. ``part=serving``: Sedna's way (FastAPI + uvicorn service, ``requests`` client, JSON lists,
   ``benchmarks/baselines``) against ours (BigModelService + JointInference, binary tensors),
   each cloud in its own process, for 1 and 64 samples per call: p50/p95 latency, samples/s and
   the cloud-call overhead (latency beyond the edge's and the cloud's own compute). Goals: our
   overhead <= half of Sedna's; our throughput at the 99% operating point >= 3x Sedna's
   cloud-only throughput.
3. ``part=miners``: 100k probability vectors, the batch form against the per-sample form
   (decisions checked equal) and against Sedna's per-sample CrossEntropy. Goal: >= 10x.
"""

from __future__ import annotations

import argparse
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

from examples.demo.digits_cascade import build_scenario  # noqa: E402


def emit(record: dict[str, Any]) -> None:
    print(json.dumps({"bench": "joint_inference", **record}), flush=True)


# -- part 1: accuracy against offload ----------------------------------------------------------


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


def curve_part(sc: dict[str, Any]) -> dict[str, Any]:
    y = sc["y_test"]
    edge_p = sc["edge"].predict(sc["x_test"])
    cloud_p = sc["cloud"].predict(sc["x_test"])
    edge_pred, cloud_pred = edge_p.argmax(1), cloud_p.argmax(1)
    acc_edge, acc_cloud = float((edge_pred == y).mean()), float((cloud_pred == y).mean())
    target = 0.99 * acc_cloud
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
    best: dict[str, Any] | None = None
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
        reach = [p for p in points if p[1] >= target]
        op = min(reach) if reach else None
        interp = np.interp(grid, off, acc)
        area = float(np.trapezoid(interp - random_line, grid))
        ceiling = float(np.trapezoid(oracle - random_line, grid))
        record = {
            "part": "curve_summary",
            "router": router,
            **{
                f"accuracy_at_{int(f * 100)}pct": max(
                    (a for o, a, _ in points if o <= f), default=None
                )
                for f in (0.1, 0.2, 0.3)
            },
            "offload_for_95pct_of_cloud": _first(points, 0.95 * acc_cloud),
            "offload_for_99pct_of_cloud": op[0] if op else None,
            "offload_for_100pct_of_cloud": _first(points, acc_cloud),
            "threshold_for_99pct": op[2] if op else None,
            "apgr_area": area / ceiling if ceiling > 0 else None,
        }
        emit(record)
        if op and router != "Random" and (best is None or op[0] < best["offload"]):
            best = {"router": router, "threshold": op[2], "offload": op[0], "accuracy": op[1]}
    _plot(curves, acc_edge, acc_cloud, grid, oracle)
    summary = {
        "part": "curve_goal",
        "edge_accuracy": acc_edge,
        "cloud_accuracy": acc_cloud,
        "target_accuracy": target,
        "operating_point": best,
        "goal": "99% of cloud-only accuracy at <= 30% offload",
        "met": bool(best and best["offload"] <= 0.30),
        "plot": str(CURVE_PNG.relative_to(ROOT)),
    }
    emit(summary)
    return summary


def _first(points: list[tuple[float, float, float]], level: float) -> float | None:
    reach = [p[0] for p in points if p[1] >= level]
    return min(reach) if reach else None


def _plot(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    acc_edge: float,
    acc_cloud: float,
    grid: np.ndarray,
    oracle: np.ndarray,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    # Entropy ranks samples exactly as CrossEntropy (1 - normalised entropy): dashed on top
    styles = {"Random": ":", "Entropy": "--"}
    for router, (off, acc) in curves.items():
        label = "Entropy (same ranking)" if router == "Entropy" else router
        ax.plot(off * 100, acc * 100, styles.get(router, "-"), label=label, linewidth=1.6)
    ax.plot(grid * 100, oracle * 100, "--", color="grey", label="Oracle (ceiling)", linewidth=1)
    ax.axhline(acc_cloud * 99, color="black", linewidth=0.8, linestyle="-.", label="99% of cloud")
    ax.scatter([0, 100], [acc_edge * 100, acc_cloud * 100], color="black", zorder=5)
    ax.annotate("edge only", (0, acc_edge * 100), textcoords="offset points", xytext=(6, -12))
    ax.annotate("cloud only", (100, acc_cloud * 100), textcoords="offset points", xytext=(-60, 8))
    ax.axvline(30, color="red", linewidth=0.6, alpha=0.5)
    ax.set_xlabel("offload to the cloud (% of samples)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Joint inference on digits: edge LR(4x4) + cloud MLP(8x8)")
    ax.set_ylim(acc_edge * 100 - 3, min(100.5, max(oracle) * 100 + 1))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    CURVE_PNG.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(CURVE_PNG)
    plt.close(fig)


# -- part 2: serving, ours against Sedna's way -------------------------------------------------


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


def serving_part(sc: dict[str, Any], op: dict[str, Any] | None, calls: dict[int, int]) -> None:
    from benchmarks.baselines.sedna_hem import SednaCrossEntropyFilter
    from benchmarks.baselines.sedna_ji_client import SednaJointInference
    from sedna_core import wire
    from sedna_core.jobs.joint_inference import JointInference

    x_test, y_test = sc["x_test"], sc["y_test"]
    edge, cloud = sc["edge"], sc["cloud"]
    sedna_proc, sedna_stop, sedna_port = _in_process(_serve_sedna)
    ours_proc, ours_stop, ours_port = _in_process(_serve_ours)
    url = f"http://127.0.0.1:{ours_port}"
    ce = _sedna_ce_threshold(sc)
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
                    "part": "serving_compute",
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
                emit({"part": "serving", "system": name, "batch": b, **row})
            ratio = rows["ours_cloud_only"]["overhead_ms"] / rows["sedna_cloud_only"]["overhead_ms"]
            goal: dict[str, Any] = {
                "part": "serving_goal",
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


def _sedna_ce_threshold(sc: dict[str, Any]) -> float | None:
    """Sedna's CrossEntropy threshold reaching 99% of cloud accuracy (from the curve)."""
    y = sc["y_test"]
    edge_p, cloud_p = sc["edge"].predict(sc["x_test"]), sc["cloud"].predict(sc["x_test"])
    target = 0.99 * float((cloud_p.argmax(1) == y).mean())
    for threshold, miner in router_miners(edge_p)["CrossEntropy"]:
        hard = miner.mine(edge_p)
        if (np.where(hard, cloud_p.argmax(1), edge_p.argmax(1)) == y).mean() >= target:
            return float(threshold)
    return None


# -- part 3: miners, batch against per-sample ---------------------------------------------------


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
    summary = curve_part(sc)
    calls = {1: 60, 64: 20} if args.quick else {1: 1500, 64: 500}
    serving_part(sc, summary["operating_point"], calls)
    miners_part(10_000 if args.quick else 100_000)
    emit({"part": "done", "seconds": time.perf_counter() - started})
    return 0


if __name__ == "__main__":
    sys.exit(main())
