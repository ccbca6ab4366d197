"""Federated round time and server memory: ours against Flower in the same run (benchmark 1).

Run from the repository root (about 3 minutes on 2 cores)::

    .venv/bin/python -m benchmarks.federated_round_time                 # 4 x 200k and 4 x 10M
    .venv/bin/python -m benchmarks.federated_round_time --params 200000 --rounds 4   # quicker

Each system runs its server and four clients as five processes on 127.0.0.1. The model is four
float32 tensors; a client's "training" adds a constant to every weight (the same for both), so
the round time is the systems' own cost: sending the global weights, receiving the updates,
checking and aggregating them. A round's time runs from the server sending the round's weights
to it having the new global weights (same definition for both); round 1 is skipped (start-up).
Flower: ``start_server``/``start_client`` (gRPC bidi, NumPy clients, ``FedAvg``), see
``benchmarks/baselines/flower_fl.py``. Ours: ``AggregationServer``/``FederatedLearning``, FedAvg,
no checkpoints (Flower writes none; ``--checkpoint`` adds a run with them).

Output: one JSON line per system and size (median round time, every round time, server peak
RSS, the peak above the server's idle RSS in model sizes), then one ratio line per size.
Goals: at 10M, our round time at most half of Flower's; our server's peak at most 4x one model.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks.baselines.flower_fl import model, peak_rss_mb, rss_mb  # noqa: E402

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- ours: roles ---------------------------------------------------------------------------


def ours_server(port: int, params: int, clients: int, rounds: int, checkpoint: str) -> None:
    from scipy.linalg import blas  # noqa: F401  (the aggregation kernel: imported on first use)

    from sedna_core.jobs.federated import AggregationServer

    base = rss_mb()
    server = AggregationServer(
        "FedAvg",
        exit_round=rounds,
        participants_count=clients,
        port=port,
        initial_weights=model(params),
        round_deadline=600,
        checkpoint_dir=checkpoint or None,
        job_name="bench",
    )
    result = asyncio.run(server.run())
    times = [r["duration"] for r in result.history]
    print(
        json.dumps(
            {
                "round_times": times,
                "peak_rss_mb": peak_rss_mb(),
                "base_rss_mb": base,
                "status": result.status,
            }
        ),
        flush=True,
    )


class BenchEstimator:
    def __init__(self, params: int, cid: int) -> None:
        self.w = model(params)
        self.step = 0.001 * (cid + 1)

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> None:
        import numpy as np

        for w in self.w:
            w += np.float32(self.step)

    def predict(self, x: Any) -> Any:
        return x

    def get_weights(self) -> list[Any]:
        return self.w

    def set_weights(self, weights: list[Any]) -> None:
        self.w = list(weights)


def ours_client(port: int, params: int, cid: int) -> None:
    from sedna_core.jobs.federated import FederatedLearning

    FederatedLearning(
        BenchEstimator(params, cid),
        address=f"ws://127.0.0.1:{port}",
        client_id=f"bench-{cid}",
        backend="custom",
    ).train([0] * 100)


# -- orchestration -------------------------------------------------------------------------


def run_system(system: str, params: int, clients: int, rounds: int, checkpoint: bool) -> dict:
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "SEDNA_LOG_FORMAT": "json"}
    with tempfile.TemporaryDirectory(prefix="fl-bench-") as tmp:
        if system in ("flower", "sedna-json"):
            module = {"flower": "flower_fl", "sedna-json": "sedna_fl_json"}[system]
            server_cmd = [
                PY,
                "-m",
                f"benchmarks.baselines.{module}",
                "server",
                str(port),
                str(params),
                str(clients),
                str(rounds),
            ]
            client_cmd = [
                PY,
                "-m",
                f"benchmarks.baselines.{module}",
                "client",
                str(port),
                str(params),
            ]
        else:
            server_cmd = [
                PY,
                "-m",
                "benchmarks.federated_round_time",
                "--role",
                "server",
                "--port",
                str(port),
                "--params",
                str(params),
                "--clients",
                str(clients),
                "--rounds",
                str(rounds),
                "--checkpoint-dir",
                str(Path(tmp) / "ckpt") if checkpoint else "",
            ]
            client_cmd = [
                PY,
                "-m",
                "benchmarks.federated_round_time",
                "--role",
                "client",
                "--port",
                str(port),
                "--params",
                str(params),
                "--cid",
            ]
        start = time.perf_counter()
        server = subprocess.Popen(
            server_cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        time.sleep(0.5 if system == "sedna-core" else 1.5)  # let it bind before clients dial
        procs = [
            subprocess.Popen(
                [*client_cmd, str(i)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(clients)
        ]
        try:
            out, err = server.communicate(timeout=540)
        finally:
            for p in procs:
                try:
                    p.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    p.kill()
        wall = time.perf_counter() - start
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if server.returncode != 0 or not lines:
        raise RuntimeError(f"{system} server failed ({server.returncode}):\n{err[-3000:]}")
    doc = json.loads(lines[-1])
    times = [t for t in doc["round_times"][1:] if t == t]  # skip round 1 (start-up), NaNs
    model_mb = params * 4 / 2**20
    return {
        "bench": "federated_round_time",
        "system": system + ("+checkpoints" if checkpoint else ""),
        "params": params,
        "clients": clients,
        "rounds": rounds,
        "median_round_s": statistics.median(times),
        "round_times_s": [round(t, 4) for t in doc["round_times"]],
        "server_peak_rss_mb": round(doc["peak_rss_mb"], 1),
        "server_idle_rss_mb": round(doc["base_rss_mb"], 1),
        "model_mb": round(model_mb, 2),
        "peak_over_idle_in_models": round((doc["peak_rss_mb"] - doc["base_rss_mb"]) / model_mb, 2),
        "wall_s": round(wall, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", choices=["bench", "server", "client"], default="bench")
    ap.add_argument("--port", type=int)
    ap.add_argument("--params", type=str, default="200000,10000000")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=0, help="default: 8 at 200k, 5 at 10M")
    ap.add_argument("--cid", type=int, default=0)
    ap.add_argument("--checkpoint-dir", default="")
    ap.add_argument("--checkpoint", action="store_true", help="also run ours with checkpoints")
    ap.add_argument("--ours-only", action="store_true", help="skip Flower (no ratio line)")
    args = ap.parse_args(argv)
    if args.role == "server":
        ours_server(args.port, int(args.params), args.clients, args.rounds, args.checkpoint_dir)
        return 0
    if args.role == "client":
        ours_client(args.port, int(args.params), args.cid)
        return 0
    for params in (int(p) for p in args.params.split(",")):
        rounds = args.rounds or (8 if params <= 1_000_000 else 5)
        rows = {}
        systems = ["sedna-core"] + ([] if args.ours_only else ["flower"])
        systems += ["sedna-core-ckpt"] if args.checkpoint else []
        for system in systems:
            name = "sedna-core" if system.startswith("sedna") else system
            row = run_system(name, params, args.clients, rounds, system.endswith("ckpt"))
            rows[system] = row
            print(json.dumps(row), flush=True)
        if "flower" not in rows:
            continue
        ours, flower = rows["sedna-core"], rows["flower"]
        print(
            json.dumps(
                {
                    "bench": "federated_round_time",
                    "params": params,
                    "ratio_round_time_ours_over_flower": round(
                        ours["median_round_s"] / flower["median_round_s"], 3
                    ),
                    "ratio_peak_rss_ours_over_flower": round(
                        ours["server_peak_rss_mb"] / flower["server_peak_rss_mb"], 3
                    ),
                    "goal": "round time <= 0.5x Flower at 10M; our peak over idle <= 4 models",
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
