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

The transport floor is measured in the same run, before and after the systems: the same
processes' worth of plain sockets on 127.0.0.1 moving one round's bytes (the model to each of
the N clients, and N models back), one thread per connection, nothing else
(``--role floor-server``/``floor-client``); ours is compared with the lower of the two.

Server memory: peak resident memory, plus the peak bytes of the update spool (sampled every
10 ms: allocated blocks of the spool files), the spool's directory and its filesystem (a RAM
filesystem's bytes are memory; a disk-backed spool's bytes are still counted in the total).

``benchmarks/federated_scale.py`` reuses this harness with many clients per process (role
``clients``: asyncio tasks sending fixed weights; Flower's ``flower_fl clients``: threads) and
reads the servers' per-round bytes on the wire and CPU seconds from the same JSON line.

Output: one JSON line per system and size (median round time, every round time, server peak
RSS, spool bytes and location, the peak above idle in model sizes), then one ratio line per
size. Goals (issue 17): at 4 x 10M, our round time at most 2x the transport floor and at most
0.25x Flower's; our server's peak (resident + spool) over idle at most 4 models.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
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

from benchmarks.baselines.flower_fl import loopback_bytes, model, peak_rss_mb, rss_mb  # noqa: E402

PY = sys.executable


def sedna_python() -> tuple[str, str]:
    """The Sedna venv's python and Sedna's SDK folder (``SEDNA_VENV``, ``SEDNA_LIB``)."""
    venv = Path(os.environ.get("SEDNA_VENV", ROOT / ".venv-sedna"))
    lib = Path(os.environ.get("SEDNA_LIB", ROOT.parent / "shared/peers/sedna-lib"))
    if not (lib / "sedna").is_dir() or not (venv / "bin/python").exists():
        raise FileNotFoundError(f"Sedna's SDK ({lib}) or its venv ({venv}) is missing")
    return str(venv / "bin/python"), str(lib)


def wait_listening(port: int, proc: subprocess.Popen, limit: float = 60.0) -> None:
    """Poll until something accepts on ``port`` (the server process has started)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)  # process start-up, polled
    raise RuntimeError(f"server on port {port} did not start (exit code {proc.poll()})")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- ours: roles ---------------------------------------------------------------------------


def ours_server(port: int, params: int, clients: int, rounds: int, checkpoint: str) -> None:
    from scipy.linalg import blas  # noqa: F401  (the aggregation kernel: imported on first use)

    from sedna_core.jobs.federated import AggregationServer

    base = rss_mb()
    wire: list[int] = []  # loopback bytes at each round's end (the bytes per round, in a netns)
    cpu: list[float] = []  # the server's CPU seconds (all threads) at each round's end

    def mark(record: dict[str, Any]) -> None:
        wire.append(loopback_bytes())
        cpu.append(time.process_time())

    server = AggregationServer(
        "FedAvg",
        exit_round=rounds,
        participants_count=clients,
        port=port,
        initial_weights=model(params),
        round_deadline=600,
        checkpoint_dir=checkpoint or None,
        job_name="bench",
        on_round=mark,
    )
    spool = SpoolSampler(server.config.spool_dir)
    spool.start()
    result = asyncio.run(server.run())
    spool.stop()
    times = [r["duration"] for r in result.history]
    print(
        json.dumps(
            {
                "round_times": times,
                "peak_rss_mb": peak_rss_mb(),
                "base_rss_mb": base,
                "status": result.status,
                "round_end_wire_bytes": wire,
                "round_end_cpu_s": cpu,
                **spool.report(),
            }
        ),
        flush=True,
    )


class SpoolSampler:
    """Samples (every 10 ms, in a thread) the bytes this server process holds in its update
    spool directory: allocated blocks of its files, so the sparse or truncated count right."""

    def __init__(self, configured: str | None) -> None:
        import threading

        from sedna_core.jobs.federated._spool import PREFIX, default_spool_parent

        self.parent = Path(configured) if configured else default_spool_parent()
        self.pattern = f"{PREFIX}{os.getpid()}-*"
        self.peak = 0
        self.path: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            total = 0
            for d in self.parent.glob(self.pattern):
                self.path = str(d)
                for f in d.iterdir():
                    try:
                        total += f.stat().st_blocks * 512
                    except FileNotFoundError:  # released between listing and stat
                        continue
            self.peak = max(self.peak, total)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def report(self) -> dict[str, Any]:
        from sedna_core.jobs.federated._spool import RAM_FILESYSTEMS, filesystem_of

        fs = filesystem_of(Path(self.path or self.parent))
        return {
            "spool_dir": self.path or str(self.parent),
            "spool_filesystem": fs,
            "spool_in_memory": fs in RAM_FILESYSTEMS,
            "spool_peak_mb": self.peak / 2**20,
        }


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


class FixedEstimator(BenchEstimator):
    """Sends the same fixed weights every round (no training; the global model it receives
    is dropped): the scaling benchmark's client, as Flower's ``flower_fl clients``."""

    def __init__(self, params: int, cid: int) -> None:
        super().__init__(params, cid)
        self.w = [w + self.step for w in self.w]

    def train(self, train_data: Any, valid_data: Any = None, **kwargs: Any) -> None:
        return None

    def set_weights(self, weights: list[Any]) -> None:
        return None


def ours_client(port: int, params: int, cid: int) -> None:
    from sedna_core.jobs.federated import FederatedLearning

    FederatedLearning(
        BenchEstimator(params, cid),
        address=f"ws://127.0.0.1:{port}",
        client_id=f"bench-{cid}",
        backend="custom",
    ).train([0] * 100)


def ours_clients(port: int, params: int, first: int, count: int) -> None:
    """``count`` clients as asyncio tasks of this one process, sending fixed weights."""
    from sedna_core.jobs.federated import FederatedLearning

    async def main() -> None:
        jobs = [
            FederatedLearning(
                FixedEstimator(params, cid),
                address=f"ws://127.0.0.1:{port}",
                client_id=f"bench-{cid}",
                backend="custom",
            )
            for cid in range(first, first + count)
        ]
        await asyncio.gather(*(job.atrain([0] * 100) for job in jobs))

    asyncio.run(main())


# -- orchestration -------------------------------------------------------------------------


def client_groups(clients: int, procs: int) -> list[tuple[int, int]]:
    """``(first, count)`` of each client process when ``clients`` share ``procs`` processes."""
    per, extra = divmod(clients, procs)
    groups, first = [], 0
    for p in range(procs):
        count = per + (p < extra)
        groups.append((first, count))
        first += count
    return [g for g in groups if g[1]]


def run_system(
    system: str,
    params: int,
    clients: int,
    rounds: int,
    checkpoint: bool,
    timeout: float = 540,
    procs: int = 0,
) -> dict:
    """One system's run; ``procs`` > 0 puts the clients in that many processes (asyncio tasks
    for ours, threads for Flower) sending fixed weights, instead of one process per client."""
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "SEDNA_LOG_FORMAT": "json"}
    with tempfile.TemporaryDirectory(prefix="fl-bench-") as tmp:
        if system in ("flower", "sedna-json", "sedna-real"):
            module = {"flower": "flower_fl", "sedna-json": "sedna_fl_json",
                      "sedna-real": "sedna_fl_real"}[system]  # fmt: skip
            py = PY
            if system == "sedna-real":  # Sedna's own SDK, in its own venv
                py, lib = sedna_python()
                env.update(PYTHONPATH=f"{lib}{os.pathsep}{ROOT}", BACKEND_TYPE="SKLEARN",
                           AGG_BIND_IP="127.0.0.1", AGG_IP="127.0.0.1")  # fmt: skip
            server_cmd = [
                py,
                "-m",
                f"benchmarks.baselines.{module}",
                "server",
                str(port),
                str(params),
                str(clients),
                str(rounds),
            ]
            client_cmd = [
                py,
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
        if procs:
            if system not in ("flower", "sedna-core"):
                raise ValueError(f"{system}: no many-clients-per-process role")
            client_cmd[client_cmd.index("client")] = "clients"
            args = [
                [str(first), str(count)]
                if system == "flower"
                else [str(first), "--count", str(count)]
                for first, count in client_groups(clients, procs)
            ]
        else:
            args = [[str(i)] for i in range(clients)]
        wait_listening(port, server)  # clients dial once it listens
        procs_ = [
            subprocess.Popen(
                [*client_cmd, *a],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            for a in args
        ]
        try:
            out, err = server.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            server.kill()  # never leave a server behind
            for p in procs_:
                p.kill()
            raise
        finally:
            for p in procs_:
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
    # bytes between consecutive round ends: one round's traffic (round 1 has no start mark)
    ends = doc.get("round_end_wire_bytes") or []
    per_round = [b - a for a, b in itertools.pairwise(ends)]
    cpu = [b - a for a, b in itertools.pairwise(doc.get("round_end_cpu_s") or [])]
    model_mb = params * 4 / 2**20
    spool_mb = doc.get("spool_peak_mb", 0.0)
    memory = {}
    if "spool_dir" in doc:
        # resident + spool: an upper bound (the two peaks need not coincide); the spool is
        # counted whatever its filesystem, and flagged when it is RAM (then it IS memory)
        memory = {
            "server_spool_peak_mb": round(spool_mb, 1),
            "spool_dir": doc["spool_dir"],
            "spool_filesystem": doc["spool_filesystem"],
            "spool_in_memory": doc["spool_in_memory"],
            "server_peak_rss_plus_spool_mb": round(doc["peak_rss_mb"] + spool_mb, 1),
            "rss_plus_spool_over_idle_in_models": round(
                (doc["peak_rss_mb"] + spool_mb - doc["base_rss_mb"]) / model_mb, 2
            ),
        }
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
        **memory,
        **({"wire_bytes_per_round": int(statistics.median(per_round))} if per_round else {}),
        **({"server_cpu_s_per_round": round(statistics.median(cpu), 4)} if cpu else {}),
        "wall_s": round(wall, 1),
    }


# -- the transport floor: plain sockets, the bytes of one round --------------------------------


def floor_server(port: int, params: int, clients: int, rounds: int) -> None:
    """Accept ``clients`` connections; each round send the model's bytes to every client and
    receive as many back from each, one thread per connection (no framing, no checks, no
    aggregation): the least a round on this machine's loopback can cost."""
    import threading

    nbytes = params * 4
    out = bytearray(nbytes)
    listener = socket.create_server(("127.0.0.1", port))
    conns: list[socket.socket] = []
    while len(conns) < clients:  # a client says hello; the start-up probe just closes
        conn = listener.accept()[0]
        if conn.recv(1) == b"h":
            conns.append(conn)
        else:
            conn.close()
    start, end = threading.Barrier(clients + 1), threading.Barrier(clients + 1)

    def serve(conn: socket.socket) -> None:
        buf = memoryview(bytearray(nbytes))
        for _ in range(rounds):
            start.wait()
            conn.sendall(out)
            got = 0
            while got < nbytes:
                n = conn.recv_into(buf[got:])
                if n == 0:
                    raise ConnectionError("client left")
                got += n
            end.wait()

    threads = [threading.Thread(target=serve, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    times = []
    for _ in range(rounds):
        start.wait()
        t0 = time.perf_counter()
        end.wait()
        times.append(time.perf_counter() - t0)
    for t in threads:
        t.join()
    print(json.dumps({"round_times": times}), flush=True)


def floor_client(port: int, params: int, rounds: int, conns: int = 1) -> None:
    """``conns`` connections, one thread each (the server needs all for its first round)."""
    if conns > 1:
        import threading

        threads = [
            threading.Thread(target=floor_client, args=(port, params, rounds)) for _ in range(conns)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    nbytes = params * 4
    buf = memoryview(bytearray(nbytes))
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(b"h")
        for _ in range(rounds):
            got = 0
            while got < nbytes:
                n = conn.recv_into(buf[got:])
                if n == 0:
                    raise ConnectionError("server left")
                got += n
            conn.sendall(buf)


def transport_floor(params: int, clients: int, rounds: int, procs: int = 0) -> dict[str, Any]:
    """Median round of :func:`floor_server` with ``clients`` client processes (round 1 skipped),
    or with the clients' connections spread over ``procs`` processes (threads in each)."""
    port = free_port()
    env = {**os.environ}
    base = [PY, "-m", "benchmarks.federated_round_time", "--port", str(port), "--params",
            str(params), "--clients", str(clients), "--rounds", str(rounds)]  # fmt: skip
    server = subprocess.Popen(
        [*base, "--role", "floor-server"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    wait_listening(port, server)
    counts = [c for _, c in client_groups(clients, procs)] if procs else [1] * clients
    procs_ = [
        subprocess.Popen([*base, "--role", "floor-client", "--count", str(c)], cwd=ROOT, env=env)
        for c in counts
    ]
    out, _ = server.communicate(timeout=300)
    for p in procs_:
        p.wait(timeout=60)
    times = json.loads(out.strip().splitlines()[-1])["round_times"][1:]
    return {
        "bench": "federated_round_time",
        "system": "transport_floor (plain sockets)",
        "params": params,
        "clients": clients,
        "median_round_s": statistics.median(times),
        "round_times_s": [round(t, 4) for t in times],
        "bytes_per_round": 2 * clients * params * 4,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--role",
        choices=["bench", "server", "client", "clients", "floor-server", "floor-client"],
        default="bench",
    )
    ap.add_argument("--port", type=int)
    ap.add_argument("--params", type=str, default="200000,10000000")
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=0, help="default: 8 at 200k, 5 at 10M")
    ap.add_argument("--cid", type=int, default=0)
    ap.add_argument("--count", type=int, default=1, help="clients (connections) in this process")
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
    if args.role == "clients":
        ours_clients(args.port, int(args.params), args.cid, args.count)
        return 0
    if args.role == "floor-server":
        floor_server(args.port, int(args.params), args.clients, args.rounds)
        return 0
    if args.role == "floor-client":
        floor_client(args.port, int(args.params), args.rounds, args.count)
        return 0
    for params in (int(p) for p in args.params.split(",")):
        rounds = args.rounds or (8 if params <= 1_000_000 else 5)
        rows = {}
        floors = []
        systems = ["floor", "sedna-core"] + ([] if args.ours_only else ["flower"])
        systems += ["sedna-core-ckpt"] if args.checkpoint else []
        systems += ["floor"]  # the floor before and after the systems: load changes
        for system in systems:
            if system == "floor":
                row = transport_floor(params, args.clients, rounds + 2)
                floors.append(row["median_round_s"])
            else:
                name = "sedna-core" if system.startswith("sedna") else system
                row = run_system(name, params, args.clients, rounds, system.endswith("ckpt"))
                rows[system] = row
            print(json.dumps(row), flush=True)
        ours = rows["sedna-core"]
        ratios: dict[str, Any] = {
            "bench": "federated_round_time",
            "params": params,
            "transport_floor_s": [round(f, 4) for f in floors],
            # against the lower floor: the conservative reading
            "ratio_round_time_ours_over_floor": round(ours["median_round_s"] / min(floors), 2),
        }
        if "flower" in rows:
            flower = rows["flower"]
            ratios["ratio_round_time_ours_over_flower"] = round(
                ours["median_round_s"] / flower["median_round_s"], 3
            )
            ratios["ratio_peak_memory_ours_over_flower"] = round(
                ours["server_peak_rss_plus_spool_mb"] / flower["server_peak_rss_mb"], 3
            )
        ratios["goal"] = (
            "at 10M: round time <= 2x the transport floor and <= 0.25x Flower; "
            "our peak (resident + spool) over idle <= 4 models"
        )
        print(json.dumps(ratios), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
