"""Our protocol against Sedna's JSON-list protocol, 4 clients x 100k float32 (benchmark 2).

Run from the repository root (a few minutes on 2 cores; each system is stopped after
``--timeout`` seconds, 240 by default, so the run ends within about 12 minutes at worst)::

    .venv/bin/python -m benchmarks.federated_sedna_protocol                # 4 x 100k, 4 rounds
    .venv/bin/python -m benchmarks.federated_sedna_protocol --systems sedna-core,sedna-real
    .venv/bin/python -m benchmarks.federated_sedna_protocol --quick        # 20k, 3 rounds

Three systems in the same run, one after another, five processes each (one server, four
clients), the same model size, rounds and trivial training for all, round 1 skipped; each row
carries the load average before and after it:

* ``sedna-real``: Sedna's own ``AggregationServer`` and FedAvg and its ``AggregationClient``
  transport, from ``../shared/peers/sedna-lib`` in its venv (``baselines/sedna_fl_real.py``;
  round time = from one aggregation's end to the next);
* ``sedna-json``: the earlier re-creation (``baselines/sedna_fl_json.py``: FastAPI + uvicorn
  websocket server, ``websockets`` clients, JSON text frames with nested lists, Sedna's
  ``Aggregator`` slots and list FedAvg; round time = from the server sending the weights that
  start a round to it having the new global weights), kept to check it against the real one;
* ``sedna-core``: ours, ``AggregationServer``/``FederatedLearning`` (same definition).

The default model is 100k parameters (not the 200k of Sedna's published 1.7-1.9 s per round):
on the shared 2-core machine Sedna's real server took 45 s per round at 200k, and all three
systems must finish in one run of under 10 minutes; ``--params 200000`` gives the published
size. Sedna fails at about 1M parameters (its frames exceed the websocket size limits).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks.federated_round_time import run_system  # noqa: E402

SYSTEMS = ("sedna-core", "sedna-real", "sedna-json")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", type=int, default=100_000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument(
        "--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {','.join(SYSTEMS)}"
    )
    ap.add_argument("--timeout", type=float, default=240, help="seconds per system")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20k parameters, 3 rounds")
    args = ap.parse_args(argv)
    if args.quick:
        args.params, args.rounds = 20_000, 3
    systems = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        ap.error(f"unknown system(s) {unknown}: choose from {','.join(SYSTEMS)}")
    rows = {}
    for system in systems:
        load = os.getloadavg()  # the machine's load beside every figure
        try:
            rows[system] = run_system(
                system, args.params, args.clients, args.rounds, False, timeout=args.timeout
            )
        except subprocess.TimeoutExpired:  # a loaded machine: say so, keep the others
            print(json.dumps({"bench": "federated_sedna_protocol", "system": system,
                              "timed_out_s": args.timeout, "load_average": load}),
                  flush=True)  # fmt: skip
            continue
        except FileNotFoundError as exc:  # Sedna's SDK or venv absent: say so
            print(json.dumps({"bench": "federated_sedna_protocol", "system": system,
                              "skipped": str(exc)}), flush=True)  # fmt: skip
            continue
        rows[system].update(
            bench="federated_sedna_protocol",
            # round 1 has no start for Sedna's real server (NaN): None keeps the line JSON
            round_times_s=[t if t == t else None for t in rows[system]["round_times_s"]],
            load_average_before=load,
            load_average_after=os.getloadavg(),
        )
        print(json.dumps(rows[system], allow_nan=False), flush=True)
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
                    "clients": args.clients,
                    "rounds": args.rounds,
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
