"""Accuracy against ε with central DP on non-IID digits: ours against Flower's DP strategies.

Run from the repository root (51 s of CPU; 6.6 minutes on 2 cores at load 25-29)::

    .venv/bin/python -m benchmarks.federated_dp

Two scenarios on the digits split of ``benchmarks.federated_accuracy`` (Dirichlet alpha = 0.5 over
the training 80 %, softmax regression by SGD, lr 0.5, batch 16, 3 local epochs, 30 rounds):

* ``10 clients``: every client every round (sampling rate q = 1);
* ``100 clients``: smaller shards (about 14 images each, at least 5), 10 clients sampled per
  round uniformly with a seeded generator (q = 0.1).

For each of Flower's two fixed-clipping variants (server-side, client-side) and each noise
multiplier z, ours and Flower's strategy aggregate **the same client updates in the same
process**: the clients' local training is simulated here (one model object per client, as a
client process would keep it) and both systems start from the same model and see the same
sampled clients; ours goes through the server's own aggregation path
(``AggregationServer._aggregate``: decode, clip, FedAvg, noise, accounting) with the client
half of the chain applied as a client applies it; Flower's strategy object gets ``FitRes``
objects and ``aggregate_fit`` (its client-side clipping done as ``fixedclipping_mod`` does).
Running Flower's whole simulation stack (Ray) for the 82 Flower runs of a default invocation
does not fit the 10-minute budget on 2 cores; its strategy's aggregation is what DP changes.

The clipping norm C = 1.0 and the noise multipliers were fixed before any run (not tuned on the
test split). Noise: ours from its seeded generator, Flower's from numpy's global generator seeded
the same way: different draws, so each point is the mean over ``--seeds`` noise seeds (the data
split and client training are the same for all). ε is the RDP accountant's (``dp-accounting``)
at δ = 1e-5 for 30 rounds of the sampled Gaussian mechanism with (q, z): the same for both systems
(Flower has no accountant; it is a property of the settings). Accuracy is the final global
model's on the held-out 20 % (360 images).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from examples.demo import federated as demo  # noqa: E402

CLIP = 1.0
DELTA = 1e-5
PER_ROUND = 10
VARIANTS = (
    "DifferentialPrivacyServerSideFixedClipping",
    "DifferentialPrivacyClientSideFixedClipping",
)


def _scenario(total: int, seed: int = 42) -> list[tuple[np.ndarray, np.ndarray]]:
    x_tr, _, y_tr, _ = demo.load_digits_split()
    min_size = 10 if total <= 10 else 5  # 1,437 images over 100 clients: about 14 each
    parts = demo.dirichlet_partition(y_tr, total, 0.5, seed, min_size=min_size)
    return [(x_tr[i], y_tr[i]) for i in parts]


def _samples(total: int, rounds: int, seed: int = 7) -> list[list[int]]:
    """The clients of each round: all of them, or PER_ROUND drawn uniformly (seeded)."""
    if total <= PER_ROUND:
        return [list(range(total))] * rounds
    rng = np.random.default_rng(seed)
    return [sorted(rng.choice(total, PER_ROUND, replace=False).tolist()) for _ in range(rounds)]


def _train(
    models: list[Any], parts: list, chosen: list[int], weights: list[np.ndarray]
) -> list[tuple[list[np.ndarray], int]]:
    out = []
    for k in chosen:
        models[k].set_weights(weights)
        models[k].train(parts[k])
        out.append((models[k].get_weights(), len(parts[k][1])))
    return out


def run_ours(
    variant: str,
    z: float,
    seed: int,
    parts: list,
    samples: list[list[int]],
    test: tuple,
    shared_noise: bool = False,
) -> float:
    """``shared_noise``: draw the noise from numpy's global generator seeded as Flower's run
    is (the same calls in the same order, so the same draws) instead of ours."""
    from sedna_plugin_transforms import privacy

    from sedna_core.jobs.federated import AggregationServer
    from sedna_core.jobs.federated._transforms import TransformChain

    q = PER_ROUND / len(parts) if len(parts) > PER_ROUND else 1.0
    spec = {
        "method": variant,
        "param": {"noise_multiplier": z, "clipping_norm": CLIP, "seed": seed, "sampling_rate": q},
    }
    weights = demo.SoftmaxRegression().get_weights()
    server = AggregationServer("FedAvg", port=0, initial_weights=weights, transforms=[spec])
    client_chain = TransformChain.from_welcome(server.transforms.announce())
    models = [demo.SoftmaxRegression(epochs=demo.LOCAL_EPOCHS, seed=k) for k in range(len(parts))]
    own_source = privacy._noise_source
    if shared_noise:
        np.random.seed(seed)
        privacy._noise_source = lambda ctx, seed: np.random  # type: ignore[assignment]
    try:
        for number, chosen in enumerate(samples, start=1):
            weights = _ours_round(server, client_chain, models, parts, chosen, weights, number)
    finally:
        privacy._noise_source = own_source
    return demo.accuracy(weights, *test)


def _ours_round(
    server: Any,
    client_chain: Any,
    models: list[Any],
    parts: list,
    chosen: list[int],
    weights: list[np.ndarray],
    number: int,
) -> list[np.ndarray]:
    from sedna_core.algorithms import TransformContext
    from sedna_core.algorithms.aggregation import ArrayUpdate, specs_of

    server._global = weights
    ctx = TransformContext(number, specs_of(weights))
    sources, metrics = [], []
    for local, n in _train(models, parts, chosen, weights):
        wire, numbers = client_chain.encode_update(
            local, weights, number, server.transforms.round_config()
        )
        delta = server.transforms.decode(wire, ctx)
        sources.append(ArrayUpdate([w + d for w, d in zip(weights, delta, strict=True)], n))
        metrics.append(numbers)
    return server._aggregate(sources, number, metrics)


def run_flower(
    variant: str, z: float, seed: int, parts: list, samples: list[list[int]], test: tuple
) -> float:
    import flwr.server.strategy as strategies
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.supercore.differential_privacy import compute_clip_model_update

    logging.getLogger("flwr").setLevel(logging.ERROR)  # not one line per aggregation
    strategy = getattr(strategies, variant)(strategies.FedAvg(), z, CLIP, PER_ROUND)
    client_side = "ClientSide" in variant
    np.random.seed(seed)  # Flower's noise comes from numpy's global generator
    weights = demo.SoftmaxRegression().get_weights()
    models = [demo.SoftmaxRegression(epochs=demo.LOCAL_EPOCHS, seed=k) for k in range(len(parts))]
    for number, chosen in enumerate(samples, start=1):
        results = []
        for local, n in _train(models, parts, chosen, weights):
            if client_side:  # what Flower's fixedclipping_mod does on the client
                compute_clip_model_update(local, weights, CLIP)
            res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(local), n, {})
            results.append((None, res))
        strategy.current_round_params = [w.copy() for w in weights]
        params, _ = strategy.aggregate_fit(number, results, [])
        weights = [np.asarray(w, np.float32) for w in parameters_to_ndarrays(params)]
    return demo.accuracy(weights, *test)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=10, help="noise seeds per point")
    ap.add_argument("--z", default="0,0.5,1,2,4", help="noise multipliers (0: clipping only)")
    ap.add_argument("--clients", default="10,100")
    ap.add_argument(
        "--variants",
        default="ServerSide",
        help="Flower's fixed-clipping variants: ServerSide, ClientSide or both (comma-separated)",
    )
    ap.add_argument("--plot", default=str(ROOT / "docs" / "federated_dp_epsilon.png"))
    args = ap.parse_args(argv)
    from sedna_plugin_transforms import epsilon_of

    from sedna_core.log import configure_logging

    configure_logging("WARNING", force=True)
    _, x_te, _, y_te = demo.load_digits_split()
    rows: list[dict[str, Any]] = []
    for total in [int(c) for c in args.clients.split(",")]:
        parts = _scenario(total)
        samples = _samples(total, args.rounds)
        q = PER_ROUND / total if total > PER_ROUND else 1.0
        for variant in [v for v in VARIANTS if any(w in v for w in args.variants.split(","))]:
            for z in [float(v) for v in args.z.split(",")]:
                seeds = range(args.seeds) if z > 0 else range(1)  # z = 0: nothing random
                start = time.perf_counter()
                ours = [run_ours(variant, z, s, parts, samples, (x_te, y_te)) for s in seeds]
                theirs = [run_flower(variant, z, s, parts, samples, (x_te, y_te)) for s in seeds]
                same = [
                    run_ours(variant, z, s, parts, samples, (x_te, y_te), shared_noise=True)
                    for s in seeds
                ]
                eps = epsilon_of(z, q, args.rounds, DELTA) if z > 0 else float("inf")
                diff = (statistics.mean(ours) - statistics.mean(theirs)) * 100
                row = {
                    "bench": "federated_dp",
                    "clients": total,
                    "per_round": min(total, PER_ROUND),
                    "rounds": args.rounds,
                    "sampling_rate": q,
                    "variant": variant,
                    "noise_multiplier": z,
                    "clipping_norm": CLIP,
                    "epsilon": round(eps, 3) if eps != float("inf") else "inf",
                    "delta": DELTA,
                    "ours_accuracy": [round(a, 4) for a in ours],
                    "flower_accuracy": [round(a, 4) for a in theirs],
                    "ours_mean": round(statistics.mean(ours), 4),
                    "flower_mean": round(statistics.mean(theirs), 4),
                    "ours_minus_flower_points": round(diff, 2),
                    "ours_same_noise_accuracy": [round(a, 4) for a in same],
                    "ours_same_noise_minus_flower_points": round(
                        (statistics.mean(same) - statistics.mean(theirs)) * 100, 2
                    ),
                    "wall_s": round(time.perf_counter() - start, 1),
                    "load_average": round(os.getloadavg()[0], 2),
                }
                rows.append(row)
                print(json.dumps(row), flush=True)
    if args.plot:
        from benchmarks._plots import plot_accuracy_vs_epsilon

        print(json.dumps({"plot": str(plot_accuracy_vs_epsilon(rows, args.plot))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
