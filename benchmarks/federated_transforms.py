"""Compressed and differentially private updates on non-IID digits: bytes and accuracy.

Run from the repository root (about a minute on 2 cores)::

    .venv/bin/python -m benchmarks.federated_transforms

The scenario of ``benchmarks.federated_accuracy`` (digits, 10 clients, Dirichlet(0.5), 30 rounds,
softmax regression by SGD, 3 local epochs), run once per transform chain in the same process:
uncompressed (the peer every ratio is against), FP16, Int8, TopK(10 %) then Int8, and central DP
with server-side fixed clipping (C = 1.0, chosen before any run; noise multipliers 0.3 and 1.0,
seeded noise). Bytes are the clients' update frames on the wire (headers included) and their
tensor payload alone (the model has 650 parameters, so per-frame headers weigh); accuracy is
the global model's on the held-out 20 % after the last round. ε is the RDP accountant's at
δ = 1e-5 with q = 1 (every client, every round).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from examples.demo import federated as demo  # noqa: E402

CHAINS: dict[str, Any] = {
    "none": None,
    "fp16": ["FP16"],
    "int8": ["Int8"],
    "topk10+int8": [{"method": "TopK", "param": {"ratio": 0.1}}, "Int8"],
    "dp-z0.3": [
        {
            "method": "DifferentialPrivacyServerSideFixedClipping",
            "param": {"noise_multiplier": 0.3, "clipping_norm": 1.0, "seed": 0},
        }
    ],
    "dp-z1.0": [
        {
            "method": "DifferentialPrivacyServerSideFixedClipping",
            "param": {"noise_multiplier": 1.0, "clipping_norm": 1.0, "seed": 0},
        }
    ],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--alpha", type=float, default=0.5)
    args = ap.parse_args(argv)
    from sedna_core.jobs.federated import _client
    from sedna_core.log import configure_logging

    configure_logging("WARNING", force=True)
    sent: list[int] = []
    payload: list[int] = []
    real = _client.encode_chunks

    def counting(arrays: Any, **kw: Any) -> Any:
        payload.append(sum(a.nbytes for a in arrays))
        for frame in real(arrays, **kw):
            sent.append(len(frame))
            yield frame

    _client.encode_chunks = counting  # type: ignore[assignment]
    x_tr, x_te, y_tr, y_te = demo.load_digits_split()
    parts_idx = demo.dirichlet_partition(y_tr, args.clients, args.alpha, 42)
    parts = [(x_tr[i], y_tr[i]) for i in parts_idx]
    base: dict[str, float] = {}
    for label, chain in CHAINS.items():
        sent.clear()
        payload.clear()
        start = time.perf_counter()
        acc = asyncio.run(demo.federated_run(parts, args.rounds, (x_te, y_te), transforms=chain))
        wall = time.perf_counter() - start
        row: dict[str, Any] = {
            "bench": "federated_transforms",
            "chain": label,
            "clients": args.clients,
            "rounds": args.rounds,
            "alpha": args.alpha,
            "update_bytes": sum(sent),
            "payload_bytes": sum(payload),
            "final_accuracy": round(acc[-1], 4),
            "wall_s": round(wall, 1),
        }
        if label == "none":
            base = {"bytes": sum(sent), "payload": sum(payload), "acc": acc[-1]}
        else:
            row["bytes_ratio_vs_none"] = round(base["bytes"] / sum(sent), 2)
            row["payload_ratio_vs_none"] = round(base["payload"] / sum(payload), 2)
            row["accuracy_minus_none_points"] = round((acc[-1] - base["acc"]) * 100, 2)
        if label.startswith("dp-"):
            from sedna_plugin_transforms import epsilon_of

            z = chain[0]["param"]["noise_multiplier"]
            row["epsilon"] = round(epsilon_of(z, 1.0, args.rounds, 1e-5), 2)
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
