"""How a federated round's cost grows with clients and model size: ours against Flower and the
transport floor in the same run (issue 20).

Run from the repository root (on the shared 2-core machine at load 26-40 the clients sweep took
7.4 minutes and the three model sizes about 10; ``--quick``: 4-64 clients and 1M only)::

    .venv/bin/python -m benchmarks.federated_scale
    .venv/bin/python -m benchmarks.federated_scale --quick

Two sweeps. **Clients**: 4, 16, 64, 256 clients with a 100k-parameter model (400 KB). **Model
size**: 1M and 10M parameters with 4 clients for both systems, and 100M for ours alone (Flower's
server needed 2.1 GB at 10M; 100M would not fit). In both the clients are spread over at most
four processes (``--procs``): ours as asyncio tasks (``FederatedLearning.atrain``), Flower's as
threads (its ``start_client`` blocks), so 256 clients cost four interpreters, not 256. Every
client sends the same fixed weights each round (no training), so a round is the systems' own
cost: the global model to every client, an update back from each, checks, aggregation. The
harness (servers, clients, the spool sampler, the transport floor) is
``benchmarks/federated_round_time.py``'s; see its docstring for the round's definition.

Beside each point, the **transport floor**: plain sockets on 127.0.0.1 moving the same bytes
(the model to each client, one back from each), one thread per connection, the client
connections in the same number of processes; measured before and after the systems, the lower
one used.

**Bytes on the wire**: the benchmark runs in its own network namespace (``unshare -rn``, where
the kernel allows it; ``--no-netns`` or no permission: the host's, which other traffic shares,
and the rows say so), so the loopback interface's byte counter is this benchmark's alone;
the servers read it at each round's end, and a round's bytes are the difference between two
consecutive ends (TCP/IP headers included), to compare with the payload (2 x clients x model).

**Server memory**: peak resident memory and peak spool bytes (where the spool lives and on
which filesystem), their sum, and fits of memory against the number of clients (least squares,
MB per client) to state the per-connection cost. Output: one JSON line per system and point,
one summary line per sweep, and the two plots under ``docs/`` (``--plot-dir``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

from benchmarks.federated_round_time import run_system, transport_floor  # noqa: E402

#: set in the re-executed benchmark once it runs in its own network namespace
NETNS_FLAG = "SEDNA_BENCH_NETNS"


def in_own_netns() -> bool:
    return os.environ.get(NETNS_FLAG) == "1"


def reexec_in_netns(argv: list[str]) -> int | None:
    """Run this benchmark again in a new network namespace with its loopback up; None when
    the kernel or the tools do not allow it (the caller then runs in the host's namespace)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return None
    probe = subprocess.run(
        ["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        return None
    cmd = [sys.executable, "-m", "benchmarks.federated_scale", *argv]
    script = 'ip link set lo up && exec "$@"'
    env = {**os.environ, NETNS_FLAG: "1"}
    return subprocess.call(["unshare", "-rn", "sh", "-c", script, "sh", *cmd], cwd=ROOT, env=env)


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def point(
    sweep: str, params: int, clients: int, rounds: int, procs: int, flower: bool
) -> list[dict[str, Any]]:
    """One point of a sweep: floor, ours, Flower (optional), floor again; one row each."""
    rows: list[dict[str, Any]] = []
    nprocs = min(clients, procs)
    payload = 2 * clients * params * 4
    systems = ["floor", "sedna-core"] + (["flower"] if flower else []) + ["floor"]
    for system in systems:
        load_before = load()
        if system == "floor":
            row = transport_floor(params, clients, rounds + 1, procs=nprocs)
            row["system"] = "transport floor"
        else:
            row = run_system(system, params, clients, rounds, False, procs=nprocs)
        times = row["round_times_s"] if system == "floor" else row["round_times_s"][1:]
        row.update(
            bench="federated_scale",
            sweep=sweep,
            client_processes=nprocs,
            payload_bytes_per_round=payload,
            round_s_min=min(times),
            round_s_max=max(times),
            load_avg_before=load_before,
            load_avg_after=load(),
            netns=in_own_netns(),
        )
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def fit_line(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares ``y = a + b x``: ``(a, b)``."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return my - b * mx, b


def loglog_slopes(rows: list[dict[str, Any]], x: str) -> list[float]:
    """Slopes of log(round time) against log(``x``) between consecutive points: <= 1 means the
    round grows at most linearly in ``x`` over that step."""
    best: dict[float, float] = {}  # the floor has two rows per point: the lower counts
    for r in rows:
        best[r[x]] = min(best.get(r[x], math.inf), r["median_round_s"])
    pts = sorted(best.items())
    return [
        round(math.log(t2 / t1) / math.log(x2 / x1), 2)
        for (x1, t1), (x2, t2) in itertools.pairwise(pts)
    ]


def summarise(sweep: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": "federated_scale", "summary": sweep}
    for system in ("sedna-core", "flower", "transport floor"):
        mine = [r for r in rows if r["system"] == system]
        if len(mine) < 2:
            continue
        key = system.replace(" ", "_").replace("-", "_")
        out[f"{key}_round_s"] = {
            str(x): round(min(r["median_round_s"] for r in mine if r[sweep] == x), 4)
            for x in sorted({r[sweep] for r in mine})
        }
        out[f"{key}_loglog_slope_vs_payload_bytes"] = loglog_slopes(mine, "payload_bytes_per_round")
        if system == "transport floor":
            continue
        if sweep == "clients":
            a, b = fit_line([r["clients"] for r in mine], [r["server_peak_rss_mb"] for r in mine])
            out[f"{key}_peak_rss_fit"] = {
                "idle_mb": round(a, 1),
                "kb_per_client": round(b * 1024, 1),
            }
            if system == "sedna-core":
                a, b = fit_line(
                    [r["clients"] for r in mine],
                    [r["server_peak_rss_plus_spool_mb"] for r in mine],
                )
                out[f"{key}_rss_plus_spool_fit"] = {
                    "mb": round(a, 1),
                    "kb_per_client": round(b * 1024, 1),
                    "model_kb": round(mine[0]["params"] * 4 / 1024, 1),
                }
        wire = [r for r in mine if "wire_bytes_per_round" in r]
        out[f"{key}_wire_over_payload"] = {
            str(r[sweep]): round(r["wire_bytes_per_round"] / r["payload_bytes_per_round"], 3)
            for r in wire
        }
    out["ours_over_floor"], out["ours_over_flower"] = {}, {}
    for ours in (r for r in rows if r["system"] == "sedna-core"):
        same = [r for r in rows if (r["params"], r["clients"]) == (ours["params"], ours["clients"])]
        x = str(ours[sweep])
        # the floor before and after the systems: against the lower one, the strict reading
        floors = [r["median_round_s"] for r in same if r["system"] == "transport floor"]
        if floors:
            out["ours_over_floor"][x] = round(ours["median_round_s"] / min(floors), 2)
        for peer in (r for r in same if r["system"] == "flower"):
            out["ours_over_flower"][x] = round(ours["median_round_s"] / peer["median_round_s"], 3)
    print(json.dumps(out), flush=True)
    return out


def plot(rows: list[dict[str, Any]], plot_dir: Path) -> list[str]:
    from benchmarks._plots import plot_round_time

    def as_plot(r: dict[str, Any]) -> dict[str, Any]:
        name = {"sedna-core": "sedna-core (ours)", "flower": "Flower 1.42"}.get(
            r["system"], "transport floor (plain sockets)"
        )
        return {
            "system": name,
            "clients": r["clients"],
            "params": r["params"],
            "round_s": r["median_round_s"],
            "round_s_min": r["round_s_min"],
            "round_s_max": r["round_s_max"],
        }

    # the floor is measured before and after the systems: draw the lower one (the ratios' too)
    lower: dict[tuple[int, int], dict[str, Any]] = {}
    for r in rows:
        if r["system"] == "transport floor":
            key = (r["params"], r["clients"])
            if key not in lower or r["median_round_s"] < lower[key]["median_round_s"]:
                lower[key] = r
    rows = [r for r in rows if r["system"] != "transport floor" or r in lower.values()]
    by_clients = [as_plot(r) for r in rows if r["sweep"] == "clients"]
    # the model-size sweep starts at the clients sweep's 4-client, 100k point
    by_size = [as_plot(r) for r in rows if r["sweep"] == "params" or r["clients"] == 4]
    paths = [
        plot_round_time(
            by_clients,
            plot_dir / "federated_round_vs_clients.png",
            x="clients",
            xlabel="clients (100k-parameter model)",
            title="Federated round time vs clients",
        ),
        plot_round_time(
            by_size,
            plot_dir / "federated_round_vs_model.png",
            x="params",
            xlabel="model parameters (float32, 4 clients)",
            title="Federated round time vs model size",
        ),
    ]
    return [str(p) for p in paths]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", default="4,16,64,256", help="the clients sweep (100k model)")
    ap.add_argument("--small", type=int, default=100_000, help="the clients sweep's model")
    ap.add_argument("--sizes", default="1000000,10000000", help="model sizes, both systems")
    ap.add_argument("--ours-only-sizes", default="100000000", help="model sizes, ours alone")
    ap.add_argument("--procs", type=int, default=4, help="client processes at most")
    ap.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="rounds per run (round 1 skipped); default: 6 up to 1M parameters, 4 at 10M, 3 above",
    )
    ap.add_argument("--quick", action="store_true", help="4,16,64 clients; 1M; no 100M")
    ap.add_argument("--no-netns", action="store_true", help="stay in the host's namespace")
    ap.add_argument("--no-flower", action="store_true")
    ap.add_argument("--plot-dir", default=str(ROOT / "docs"), help="'' for no plots")
    ap.add_argument(
        "--from-rows",
        nargs="+",
        metavar="JSONL",
        help="measure nothing: summarise and plot the rows earlier runs printed (files)",
    )
    args = ap.parse_args(argv)
    if args.from_rows:
        rows = [
            doc
            for path in args.from_rows
            for line in Path(path).read_text().splitlines()
            if line.startswith("{") and "sweep" in (doc := json.loads(line))
        ]
        report(rows, args.plot_dir)
        return 0
    if not args.no_netns and not in_own_netns():
        rc = reexec_in_netns(argv)
        if rc is not None:
            return rc
        print(json.dumps({"bench": "federated_scale", "netns": False,
                          "note": "no network namespace: loopback bytes include other "
                                  "traffic on this host"}), flush=True)  # fmt: skip
    if args.quick:
        args.clients, args.sizes, args.ours_only_sizes = "4,16,64", "1000000", ""
    flower = not args.no_flower
    rows: list[dict[str, Any]] = []

    def rounds(params: int) -> int:
        return args.rounds or (6 if params <= 1_000_000 else 4 if params <= 10_000_000 else 3)

    for n in (int(c) for c in args.clients.split(",") if c):
        rows += point("clients", args.small, n, rounds(args.small), args.procs, flower)
    sizes = [(int(p), flower) for p in args.sizes.split(",") if p]
    sizes += [(int(p), False) for p in args.ours_only_sizes.split(",") if p]
    for params, with_flower in sizes:
        rows += point("params", params, 4, rounds(params), args.procs, with_flower)
    report(rows, args.plot_dir)
    return 0


def report(rows: list[dict[str, Any]], plot_dir: str) -> None:
    """The summary lines of both sweeps, and the plots (unless ``plot_dir`` is empty)."""
    summarise("clients", [r for r in rows if r["sweep"] == "clients"])
    summarise("params", [r for r in rows if r["sweep"] == "params" or r["clients"] == 4])
    if plot_dir:
        print(json.dumps({"bench": "federated_scale", "plots": plot(rows, Path(plot_dir))}))


if __name__ == "__main__":
    sys.exit(main())
