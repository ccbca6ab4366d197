"""Start-up cost of the plugin system: `sedna plugins list` against one framework import.

Prints JSON lines: one per case (wall-time median and every run, in seconds), then the ratio
of the listing to ``python -c "import torch"`` (goal: at most 0.5). Runs are interleaved, after
one untimed warm-up of each case, so file-system caches and machine load affect all alike.

    .venv/bin/python benchmarks/startup.py [--repeat 9] [--framework torch]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 0.5


def _time(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr.decode()}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--framework", default="torch", help="the import to compare with")
    args = parser.parse_args()

    bindir = Path(sys.executable).parent
    sedna = str(bindir / "sedna")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEDNA_")}
    env["SEDNA_LOG_FORMAT"] = "json"
    listing = json.loads(
        subprocess.run([sedna, "plugins", "list", "--json"], env=env, capture_output=True).stdout
    )
    cases = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "sedna plugins list": [sedna, "plugins", "list"],
        f"python -c 'import {args.framework}'": [
            sys.executable,
            "-c",
            f"import {args.framework}",
        ],
    }
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for cmd in cases.values():  # warm-up: page cache, .pyc files
        _time(cmd, env)
    for _ in range(args.repeat):
        for name, cmd in cases.items():
            runs[name].append(_time(cmd, env))

    medians = {name: statistics.median(values) for name, values in runs.items()}
    for name, values in runs.items():
        print(
            json.dumps(
                {
                    "benchmark": "startup",
                    "case": name,
                    "median_s": round(medians[name], 4),
                    "runs_s": [round(v, 4) for v in values],
                }
            )
        )
    peer = f"python -c 'import {args.framework}'"
    ratio = medians["sedna plugins list"] / medians[peer]
    print(
        json.dumps(
            {
                "benchmark": "startup",
                "ratio": round(ratio, 3),
                "of": "sedna plugins list",
                "to": peer,
                "goal": f"<= {GOAL}",
                "met": ratio <= GOAL,
                "plugins": {p["name"]: p["status"] for p in listing},
                "cpus": os.cpu_count(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
