"""Our protocol against Sedna's JSON-list protocol, 4 clients x 200k float32 (benchmark 2).

Run from the repository root (about a minute on 2 cores)::

    .venv/bin/python -m benchmarks.federated_sedna_protocol
    .venv/bin/python -m benchmarks.federated_sedna_protocol --params 200000 --rounds 6

Sedna's way is re-created in ``benchmarks/baselines/sedna_fl_json.py`` (FastAPI + uvicorn
websocket server, ``websockets`` clients, JSON text frames with nested lists, Sedna's
``Aggregator`` slots and list FedAvg). Ours is ``AggregationServer``/``FederatedLearning``. Same
model, same trivial training, five processes each, the same round-time definition (from the
server sending the weights that start a round to it having the new global weights), round 1
skipped. Sedna's own numbers: 1.7-1.9 s per round at 4 x 200k; it fails at about 1M parameters
(its frames exceed the websocket size limits).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks.federated_round_time import run_system  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=200_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args(argv)
    rows = {}
    for system in ("sedna-core", "sedna-json"):
        rows[system] = run_system(system, args.params, args.clients, args.rounds, False)
        rows[system]["bench"] = "federated_sedna_protocol"
        print(json.dumps(rows[system]), flush=True)
    print(
        json.dumps(
            {
                "bench": "federated_sedna_protocol",
                "params": args.params,
                "ratio_round_time_ours_over_sedna": round(
                    rows["sedna-core"]["median_round_s"] / rows["sedna-json"]["median_round_s"], 4
                ),
                "speedup": round(
                    rows["sedna-json"]["median_round_s"] / rows["sedna-core"]["median_round_s"], 1
                ),
            }
        ),
        flush=True,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
