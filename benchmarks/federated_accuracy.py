"""Accuracy on non-IID digits: ours, Flower and centralized training (benchmark 4, scenario S1).

Run from the repository root (about a minute on 2 cores)::

    .venv/bin/python -m benchmarks.federated_accuracy
    .venv/bin/python -m benchmarks.federated_accuracy --rounds 30 --clients 10 --alpha 0.5

scikit-learn's digits (pixels / 16, stratified 80/20 split, ``random_state=0``), 10 clients with
Dirichlet(0.5) label partitions (Flower's ``DirichletPartitioner`` rule, ``min_partition_size``
10, seed 42), the same model everywhere: multinomial logistic regression trained by minibatch
SGD in numpy (learning rate 0.5, batch 16, 3 local epochs per round; see
``examples/demo/federated.py``). Ours: ``AggregationServer`` + 10 ``FederatedLearning`` clients
over websockets in one process; Flower: ``start_server`` + 10 ``start_client`` processes
(gRPC), its ``FedAvg``; both sample-weighted FedAvg, 30 rounds, test accuracy of the global
model after each round. Centralized: the same model and SGD on the pooled training data for
rounds x local epochs epochs. Goal: ours within 2 points of centralized, no worse than Flower.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks.federated_round_time import free_port  # noqa: E402
from examples.demo import federated as demo  # noqa: E402

PY = sys.executable


def flower_accuracy(clients: int, rounds: int, epochs: int) -> list[float]:
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING"}
    mod = "benchmarks.baselines.flower_fl"
    server = subprocess.Popen(
        [PY, "-m", mod, "digits-server", str(port), str(clients), str(rounds), str(epochs)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    procs = [
        subprocess.Popen(
            [PY, "-m", mod, "digits-client", str(port), str(clients), str(k), str(epochs)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for k in range(clients)
    ]
    try:
        out, err = server.communicate(timeout=500)
    finally:
        for p in procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
    lines = [x for x in out.splitlines() if x.startswith("{")]
    if not lines:
        raise RuntimeError(f"Flower failed:\n{err[-3000:]}")
    return json.loads(lines[-1])["accuracy"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--local-epochs", type=int, default=3)
    ap.add_argument("--skip-flower", action="store_true")
    args = ap.parse_args(argv)
    from sedna_core.log import configure_logging

    configure_logging("WARNING", force=True)
    x_tr, x_te, y_tr, y_te = demo.load_digits_split()
    parts_idx = demo.dirichlet_partition(y_tr, args.clients, args.alpha, 42)
    parts = [(x_tr[i], y_tr[i]) for i in parts_idx]
    start = time.perf_counter()
    ours = asyncio.run(
        demo.federated_run(parts, args.rounds, (x_te, y_te), local_epochs=args.local_epochs)
    )
    ours_s = time.perf_counter() - start
    central = demo.centralized(x_tr, y_tr, epochs=args.rounds * args.local_epochs)
    central_acc = float((central.predict(x_te) == y_te).mean())
    rows = {"sedna-core": ours}
    if not args.skip_flower:
        start = time.perf_counter()
        rows["flower"] = flower_accuracy(args.clients, args.rounds, args.local_epochs)
        flower_s = time.perf_counter() - start
    common = {
        "bench": "federated_accuracy",
        "clients": args.clients,
        "rounds": args.rounds,
        "alpha": args.alpha,
        "local_epochs": args.local_epochs,
        "sizes": [len(i) for i in parts_idx],
    }
    for system, acc in rows.items():
        print(
            json.dumps(
                {
                    **common,
                    "system": system,
                    "final_accuracy": round(acc[-1], 4),
                    "best_accuracy": round(max(acc), 4),
                    "per_round": [round(a, 4) for a in acc],
                    "wall_s": round(ours_s if system == "sedna-core" else flower_s, 1),
                }
            ),
            flush=True,
        )
    print(
        json.dumps(
            {
                **common,
                "system": "centralized",
                "final_accuracy": round(central_acc, 4),
                "epochs": args.rounds * args.local_epochs,
            }
        ),
        flush=True,
    )
    summary = {
        "bench": "federated_accuracy",
        "ours_minus_centralized_points": round((ours[-1] - central_acc) * 100, 2),
        "goal": "within 2 points of centralized and no worse than Flower",
    }
    if "flower" in rows:
        summary["ours_minus_flower_points"] = round((ours[-1] - rows["flower"][-1]) * 100, 2)
    print(json.dumps(summary), flush=True)
    from benchmarks._plots import plot_accuracy_per_round  # issue 20: the picture

    plot_accuracy_per_round(
        {**rows, "centralized": [central_acc]},
        ROOT / "docs" / "federated_accuracy.png",
        title=f"Federated accuracy per round ({args.clients} clients, alpha {args.alpha})",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
