"""Our protocol against Sedna's JSON-list protocol, 4 clients x 200k float32 (benchmark 2).

Run from the repository root (about a minute on 2 cores)::

    .venv/bin/python -m benchmarks.federated_sedna_protocol
    .venv/bin/python -m benchmarks.federated_sedna_protocol --params 200000 --rounds 6

Three systems in the same run, five processes each, the same model and trivial training,
round 1 skipped:

* ``sedna-real``: Sedna's own ``AggregationServer`` and FedAvg and its ``AggregationClient``
  transport, from ``../shared/peers/sedna-lib`` in its venv (``baselines/sedna_fl_real.py``;
  round time = from one aggregation's end to the next);
* ``sedna-json``: the earlier re-creation (``baselines/sedna_fl_json.py``: FastAPI + uvicorn
  websocket server, ``websockets`` clients, JSON text frames with nested lists, Sedna's
  ``Aggregator`` slots and list FedAvg; round time = from the server sending the weights that
  start a round to it having the new global weights), kept to check it against the real one;
* ``sedna-core``: ours, ``AggregationServer``/``FederatedLearning`` (same definition).

Sedna's own published numbers: 1.7-1.9 s per round at 4 x 200k; it fails at about 1M
parameters (its frames exceed the websocket size limits).
"""

from __future__ import annotations

import argparse
import json
import subprocess
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
    ap.add_argument("--timeout", type=float, default=1500, help="seconds per system")
    args = ap.parse_args(argv)
    rows = {}
    for system in ("sedna-core", "sedna-json", "sedna-real"):
        try:
            rows[system] = run_system(
                system, args.params, args.clients, args.rounds, False, timeout=args.timeout
            )
        except subprocess.TimeoutExpired:  # a loaded machine: say so, keep the others
            print(json.dumps({"bench": "federated_sedna_protocol", "system": system,
                              "timed_out_s": args.timeout}), flush=True)  # fmt: skip
            continue
        except FileNotFoundError as exc:  # Sedna's SDK or venv absent: say so
            print(json.dumps({"bench": "federated_sedna_protocol", "system": system,
                              "skipped": str(exc)}), flush=True)  # fmt: skip
            continue
        rows[system]["bench"] = "federated_sedna_protocol"
        print(json.dumps(rows[system]), flush=True)
    if "sedna-core" not in rows:
        return 1
    ours = rows["sedna-core"]["median_round_s"]
    for peer in ("sedna-real", "sedna-json"):
        if peer not in rows:
            continue
        print(
            json.dumps(
                {
                    "bench": "federated_sedna_protocol",
                    "params": args.params,
                    "peer": peer,
                    "ratio_round_time_ours_over_peer": round(
                        ours / rows[peer]["median_round_s"], 4
                    ),
                    "speedup": round(rows[peer]["median_round_s"] / ours, 1),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
