"""Compressed and differentially private updates on non-IID digits: bytes and accuracy.

Run from the repository root (about a minute on 2 cores)::

    .venv/bin/python -m benchmarks.federated_transforms

The scenario of ``benchmarks.federated_accuracy`` (digits, 10 clients, Dirichlet(0.5), 30 rounds,
softmax regression by SGD, 3 local epochs), run once per transform chain in the same process:
uncompressed (the peer every ratio is against), FP16, Int8, Int8 with one frame per wire tensor
(as before updates were packed into one byte tensor), TopK(10 %) then Int8, and central DP with
server-side fixed clipping (C = 1.0, chosen before any run; noise multipliers 0.3 and 1.0, seeded
noise). Bytes of the clients' updates on the wire: the JSON ``update`` frame (metrics, tensor
descriptors), the binary frames (frame headers + tensor bytes) and the websocket headers of
both; each part is printed too (the model has 650 parameters, so per-frame overhead weighs).
Accuracy is the global model's on the held-out 20 % after the last round. ε is the RDP
accountant's at δ = 1e-5 with q = 1 (every client, every round).

``--round-time 10000000``: instead, the median round time (rounds 2-5) of uncompressed and Int8
jobs at 4 clients x 10M float32 parameters, alternately ``--repeat`` times each in this one run;
a server process and one process of 4 clients that send fixed weights (no training).
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
    # the same chain with one frame per wire tensor, as before updates were packed
    "int8-unpacked": ["Int8"],
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
    ap.add_argument(
        "--round-time",
        type=int,
        default=0,
        metavar="PARAMS",
        help="instead: round time of Int8 against uncompressed at 4 clients x PARAMS",
    )
    ap.add_argument("--repeat", type=int, default=2, help="runs per chain with --round-time")
    ap.add_argument("--role", choices=["server", "clients"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--transforms", default="", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.role:
        return _role(args)
    if args.round_time:
        return _round_times(args.round_time, 4, 5, args.repeat)
    from sedna_core.jobs.federated import _client
    from sedna_core.log import configure_logging

    configure_logging("WARNING", force=True)
    sent: list[int] = []  # binary frames of updates (frame headers + tensor bytes)
    payload: list[int] = []  # tensor bytes alone
    controls: list[int] = []  # the JSON "update" frames announcing them (metrics, tensors)
    framing: list[int] = []  # websocket headers of both (client frames are masked)
    real, real_control = _client.encode_chunks, _client.control

    def counting(arrays: Any, **kw: Any) -> Any:
        payload.append(sum(a.nbytes for a in arrays))
        for frame in real(arrays, **kw):
            sent.append(len(frame))
            framing.append(_ws_header(len(frame)))
            yield frame

    def counting_control(kind: str, **fields: Any) -> str:
        text = real_control(kind, **fields)
        if kind == "update":
            controls.append(len(text.encode()))
            framing.append(_ws_header(len(text.encode())))
        return text

    _client.encode_chunks = counting  # type: ignore[assignment]
    _client.control = counting_control  # type: ignore[assignment]
    x_tr, x_te, y_tr, y_te = demo.load_digits_split()
    parts_idx = demo.dirichlet_partition(y_tr, args.clients, args.alpha, 42)
    parts = [(x_tr[i], y_tr[i]) for i in parts_idx]
    base: dict[str, float] = {}
    try:
        for label, chain in CHAINS.items():
            for counts in (sent, payload, controls, framing):
                counts.clear()
            from sedna_core.jobs.federated._transforms import TransformChain

            packed = TransformChain.packed
            if label.endswith("-unpacked"):
                TransformChain.packed = property(lambda self: False)  # type: ignore[method-assign,assignment]
            start = time.perf_counter()
            try:
                acc = asyncio.run(
                    demo.federated_run(parts, args.rounds, (x_te, y_te), transforms=chain)
                )
            finally:
                TransformChain.packed = packed  # type: ignore[method-assign]
            wall = time.perf_counter() - start
            row: dict[str, Any] = {
                "bench": "federated_transforms",
                "chain": label,
                "clients": args.clients,
                "rounds": args.rounds,
                "alpha": args.alpha,
                "wire_bytes": sum(sent) + sum(controls) + sum(framing),
                "update_frame_bytes": sum(sent),
                "payload_bytes": sum(payload),
                "frame_header_bytes": sum(sent) - sum(payload),
                "control_bytes": sum(controls),
                "ws_framing_bytes": sum(framing),
                "frames_per_update": round(len(sent) / max(len(controls), 1), 2),
                "final_accuracy": round(acc[-1], 4),
                "wall_s": round(wall, 1),
            }
            if label == "none":
                base = {
                    "wire": row["wire_bytes"],
                    "bytes": sum(sent),
                    "payload": sum(payload),
                    "acc": acc[-1],
                }
            else:
                row["wire_ratio_vs_none"] = round(base["wire"] / row["wire_bytes"], 2)
                row["frame_ratio_vs_none"] = round(base["bytes"] / sum(sent), 2)
                row["payload_ratio_vs_none"] = round(base["payload"] / sum(payload), 2)
                row["accuracy_minus_none_points"] = round((acc[-1] - base["acc"]) * 100, 2)
            if label.startswith("dp-"):
                from sedna_plugin_transforms import epsilon_of

                z = chain[0]["param"]["noise_multiplier"]
                row["epsilon"] = round(epsilon_of(z, 1.0, args.rounds, 1e-5), 2)
            print(json.dumps(row), flush=True)
    finally:  # leave the client module as it was (the benchmark may run inside tests)
        _client.encode_chunks, _client.control = real, real_control  # type: ignore[assignment]
    return 0


# -- round time at 4 x 10M: a server process and a process of 4 clients sending fixed weights


def _round_times(params: int, clients: int, rounds: int, repeat: int) -> int:
    """Uncompressed and Int8 jobs alternately, ``repeat`` times each, in this one run."""
    import statistics
    import subprocess

    from benchmarks.federated_round_time import free_port, wait_listening

    env = {**os.environ, "LOG_LEVEL": "WARNING", "SEDNA_LOG_FORMAT": "json"}
    medians: dict[str, list[float]] = {"none": [], "int8": []}
    for _ in range(repeat):
        for label, chain in (("none", ""), ("int8", "Int8")):
            port = free_port()
            me = [sys.executable, "-m", "benchmarks.federated_transforms", "--port", str(port)]
            more = ["--round-time", str(params), "--rounds", str(rounds)]
            more += ["--clients", str(clients), "--transforms", chain]
            server = subprocess.Popen(
                [*me, *more, "--role", "server"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            wait_listening(port, server)
            group = subprocess.Popen(
                [*me, *more, "--role", "clients"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                out, err = server.communicate(timeout=540)
            finally:
                if server.poll() is None:
                    server.kill()  # never leave a server behind
                try:
                    group.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    group.kill()
            if server.returncode != 0:
                raise RuntimeError(f"{label} server failed ({server.returncode}):\n{err[-3000:]}")
            times = json.loads(out.strip().splitlines()[-1])["round_times"]
            median = statistics.median(times[1:])  # round 1 is start-up
            medians[label].append(median)
            print(
                json.dumps(
                    {
                        "bench": "federated_transforms_round_time",
                        "chain": label,
                        "params": params,
                        "clients": clients,
                        "median_round_s": round(median, 3),
                        "round_times_s": [round(t, 3) for t in times],
                        "load_average": os.getloadavg()[0],
                    }
                ),
                flush=True,
            )
    ratios = [i / n for i, n in zip(medians["int8"], medians["none"], strict=True)]
    print(
        json.dumps(
            {
                "bench": "federated_transforms_round_time",
                "int8_over_none": [round(r, 3) for r in ratios],
                "none_median_s": [round(t, 3) for t in medians["none"]],
                "int8_median_s": [round(t, 3) for t in medians["int8"]],
                "goal": "int8 <= 0.5 x uncompressed",
            }
        ),
        flush=True,
    )
    return 0


def _role(args: argparse.Namespace) -> int:
    from benchmarks.baselines.flower_fl import model
    from sedna_core.log import configure_logging

    configure_logging("WARNING", force=True)
    params, clients = args.round_time, args.clients
    if args.role == "server":
        from sedna_core.jobs.federated import AggregationServer

        server = AggregationServer(
            "FedAvg",
            exit_round=args.rounds,
            participants_count=clients,
            port=args.port,
            initial_weights=model(params),
            round_deadline=600,
            job_name="bench",
            transforms=args.transforms or None,
        )
        result = asyncio.run(server.run())
        times = [r["duration"] for r in result.history]
        print(json.dumps({"round_times": times, "status": result.status}), flush=True)
        return 0 if result.status == "completed" else 1
    from benchmarks.federated_round_time import FixedEstimator
    from sedna_core.jobs.federated import FederatedLearning

    async def run() -> None:
        jobs = [
            FederatedLearning(
                FixedEstimator(params, cid),
                address=f"ws://127.0.0.1:{args.port}",
                client_id=f"bench-{cid}",
                backend="custom",
            )
            for cid in range(clients)
        ]
        await asyncio.gather(*(job.atrain([0] * 100) for job in jobs))

    asyncio.run(run())
    return 0


def _ws_header(n: int) -> int:
    """Bytes of the websocket header of a client frame of ``n`` bytes (RFC 6455: 2, the
    extended length, the 4-byte mask; no compression is negotiated)."""
    return 2 + 4 + (0 if n < 126 else 2 if n < 1 << 16 else 8)


if __name__ == "__main__":
    sys.exit(main())
