"""Secure aggregation (SecAgg+): ours against Flower's in the same run (issue 22).

Run from the repository root::

    .venv/bin/python -m benchmarks.federated_secagg            # 10 x 1M, 0 then 2 dropouts
    .venv/bin/python -m benchmarks.federated_secagg --quick    # 10 x 100k, one round of each

Scenario: 10 clients, a model of four float32 tensors (1M parameters in all), fixed updates
(each client adds its own constant to every weight: no training), FedAvg with equal weights
(100 samples each). One job per system runs ``1 + R0 + R2`` rounds: round 1 is start-up
(skipped), then ``R0`` rounds with every client, then ``R2`` rounds in which clients 8 and 9
drop out after sending their masked update (they do not answer the unmask stage; the survivors'
shares remove their masks, and their updates still count). Both systems get the same SecAgg+
parameters (:data:`SECAGG`: Flower's defaults for the ranges and ``max_weight``; Flower has no
default for the share count and threshold).

Flower 1.42 runs on its **deployment engine**: ``flower-superlink`` and ten
``flower-supernode`` processes on 127.0.0.1 (insecure, the SuperLink's default subprocess
isolation: it starts a SuperExec that starts the ``flwr-serverapp``; each SuperNode starts a
``flwr-clientapp`` per message), the run submitted with ``flwr run`` from a Flower App Bundle
written into a temporary directory whose components are ``benchmarks/baselines/flower_secagg.py``
(``DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))``, ``FedAvg``, ``secaggplus_mod``).
Ours: ``AggregationServer`` with the ``SecAggPlus`` transform and ten ``FederatedLearning``
clients, each in its own process.

Measured per system, in the same run:

- **round time**: from the server asking for the round's updates to it holding the new global
  weights (Flower: ``configure_fit`` to the end of ``aggregate_fit``; ours: the round's
  ``duration``), median and range per phase;
- **server memory**: peak resident memory of the server's processes (ours: the server process,
  plus the peak bytes of its update spool, sampled every 10 ms; Flower: the SuperLink's and the
  ServerApp's peaks, ``VmHWM`` / ``ru_maxrss``, the SuperExec's reported beside them), and the
  peak over idle in model sizes;
- **bytes on the wire**: every byte between the clients and the server, both ways, counted by a
  TCP proxy in this process that each client connects through (the servers have no byte
  counters; loopback traffic has no per-process counters); a round's bytes = those forwarded
  after the previous round's end up to its own end, so every byte of the job is in one round
  (Flower's SuperNodes poll the SuperLink over HTTP: the polls count; so do our dropped
  clients' reconnections).

The proxy is one more hop for both systems. Output: one JSON line per system and phase, then
one ratio line per phase. Goals (issue 22): round time <= 0.5x Flower's; server memory
(resident + spool) over idle <= 4 models.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402  (after the thread settings above)

from benchmarks.baselines.flower_fl import model, peak_rss_mb, rss_mb  # noqa: E402
from benchmarks.federated_round_time import (  # noqa: E402
    BenchEstimator,
    SpoolSampler,
    free_port,
    wait_listening,
)

PY = sys.executable
BIN = Path(PY).parent  # flower-superlink, flower-supernode, flwr: the same venv's scripts

#: the SecAgg+ parameters, the same on both sides. Ranges and max_weight: Flower's defaults.
#: Flower has no default share count or threshold; 5 shares (a client and 4 neighbours) with a
#: threshold of 3 were chosen before any run so that 2 dropouts in one neighbourhood still
#: leave 3 shares of every secret.
SECAGG: dict[str, Any] = {
    "num_shares": 5,
    "reconstruction_threshold": 3,
    "max_weight": 1000.0,
    "clipping_range": 8.0,
    "quantization_range": 2**22,
    "modulus_range": 2**32,
}
DROPPERS = 2  # the last two clients drop out in the dropout phase
DROPOUT_LOG = "benchmark-dropout"  # the event a dropping client of ours logs, counted
NUM_SAMPLES = 100  # each client's FedAvg weight (len of its train data): 0.1 after max_weight


# -- counting proxy ----------------------------------------------------------------------------


class CountingProxy:
    """A TCP proxy on 127.0.0.1 to ``target_port``, in a thread with its own event loop, that
    records every chunk it forwards (monotonic time, bytes, direction)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.events: list[tuple[float, int, int]] = []  # (time.monotonic(), bytes, 0 up/1 down)
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        self._ready.wait(30)
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        # end the connections still open (a client that never closed) before the loop goes
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, way: int) -> None:
            try:
                while data := await src.read(1 << 16):
                    self.events.append((time.monotonic(), len(data), way))
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_w, 0), pump(up_r, writer, 1))

    def between(self, start: float, end: float) -> tuple[int, int]:
        """Bytes (up, down) forwarded in ``(start, end]`` (monotonic seconds)."""
        up = down = 0
        for t, n, way in list(self.events):
            if start < t <= end:
                if way:
                    down += n
                else:
                    up += n
        return up, down

    def totals(self) -> tuple[int, int]:
        return self.between(float("-inf"), float("inf"))

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


# -- ours: roles ---------------------------------------------------------------------------


def ours_server(port: int, params: int, clients: int, rounds: int, out: str) -> None:
    from sedna_core.jobs.federated import AggregationServer

    ends: list[float] = []  # time.monotonic() at each round's end: the proxy's clock

    class TimedServer(AggregationServer):
        def announce(self, hook: str, **kwargs: Any) -> None:
            if hook == "sedna_round_aggregated":  # announced as the round's record is written
                ends.append(time.monotonic())
            super().announce(hook, **kwargs)

    server = TimedServer(
        "FedAvg",
        exit_round=rounds,
        participants_count=clients,
        port=port,
        initial_weights=model(params),
        round_deadline=600,
        job_name="bench-secagg",
        transforms=[{"method": "SecAggPlus", "param": dict(SECAGG)}],
    )
    # idle: everything imported, the initial model held, nobody connected (Flower's likewise)
    base = rss_mb()
    spool = SpoolSampler(server.config.spool_dir)
    spool.start()
    result = asyncio.run(server.run())
    spool.stop()
    final = [np.asarray(w) for w in result.weights] if result.weights is not None else None
    doc = {
        "round_times": [r["duration"] for r in result.history],
        "ends": ends,
        "clients_per_round": [len(r["clients"]) for r in result.history],
        "peak_rss_mb": peak_rss_mb(),
        "base_rss_mb": base,
        "status": result.status,
        "message": result.message,
        "server_stats": dict(server.stats),
        "max_abs_error_vs_fedavg": _error(final, params, clients, len(result.history)),
        **spool.report(),
    }
    Path(out).write_text(json.dumps(doc))


def _error(final: list[Any] | None, params: int, clients: int, rounds: int) -> float:
    """Largest difference from plain FedAvg of the same fixed updates (equal weights; a client
    that dropped after its masked upload still counts)."""
    if final is None:
        return float("nan")
    # the clients' fixed steps (flower_secagg.client_step is the same on Flower's side)
    shift = np.float32(np.mean([BenchEstimator(1, c).step for c in range(clients)]))
    want = [w + np.float32(rounds) * shift for w in model(params)]
    return max(float(np.max(np.abs(g - w))) for g, w in zip(final, want, strict=True))


def ours_client(port: int, params: int, cid: int, drop_from: int) -> None:
    from sedna_core.jobs.federated import FederatedLearning

    class Dropper(FederatedLearning):
        """Leaves each round from ``drop_from`` on right after its masked update is sent (the
        connection closes before the unmask stage), then reconnects for the next round."""

        async def _send_update(self, ws: Any, msg: dict[str, Any], *args: Any) -> None:
            await super()._send_update(ws, msg, *args)
            if drop_from and msg.get("task") == "train" and int(msg["round"]) >= drop_from:
                self.log.warning(DROPOUT_LOG, round=msg["round"])  # counted by run_ours
                await ws.close()
                raise ConnectionResetError("left the round after the masked upload")

    estimator = BenchEstimator(params, cid)
    Dropper(
        estimator,
        address=f"ws://127.0.0.1:{port}",
        client_id=f"bench-{cid}",
        backend="custom",
    ).train([0] * NUM_SAMPLES)


# -- orchestration -------------------------------------------------------------------------


def _kill_tree(procs: list[subprocess.Popen]) -> None:
    """Stop the processes this benchmark started and their children (each was started in its
    own session, so its group holds its whole tree; detached grandchildren are found by
    walking the tree first)."""
    import psutil

    found: list[psutil.Process] = []
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            found += psutil.Process(p.pid).children(recursive=True)
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for child in found:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.terminate()
    _, alive = psutil.wait_procs(found, timeout=10)
    for child in alive:
        child.kill()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


class PeakSampler:
    """Peak resident memory (``VmHWM``) of a process and its descendants, read every 100 ms
    while they live: a child that exits keeps the last peak read."""

    def __init__(self, root_pid: int) -> None:
        self.root = root_pid
        self.peaks: dict[int, tuple[str, float]] = {}
        self.idle_mb: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PeakSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        import psutil

        while True:
            try:
                procs = [psutil.Process(self.root)]
                procs += procs[0].children(recursive=True)
            except psutil.NoSuchProcess:
                procs = []
            for p in procs:
                try:
                    name = " ".join(p.cmdline()[:2])
                    with open(f"/proc/{p.pid}/status") as fh:
                        hwm = next(x for x in fh if x.startswith("VmHWM:"))
                    self.peaks[p.pid] = (name, int(hwm.split()[1]) / 1024)
                except (psutil.NoSuchProcess, FileNotFoundError, ProcessLookupError, StopIteration):
                    continue
            if self._stop.wait(0.1):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _windows_stats(
    times: list[float], ends: list[float], proxy: CountingProxy, first: int, last: int
) -> dict[str, Any]:
    """Round time and bytes of rounds ``first..last`` (1-based, inclusive). A round's bytes are
    those forwarded after the previous round's end up to its own end (round 1: from the start),
    so every byte of the job belongs to one round, polls and reconnections included."""
    sel = range(first - 1, min(last, len(times), len(ends)))
    ts = [times[i] for i in sel]
    bounds = [(ends[i - 1] if i else float("-inf"), ends[i]) for i in sel]
    per_round = [sum(proxy.between(*b)) for b in bounds]
    ups = [proxy.between(*b)[0] for b in bounds]
    return {
        "rounds": [i + 1 for i in sel],
        "median_round_s": round(statistics.median(ts), 3) if ts else None,
        "round_s_range": [round(min(ts), 3), round(max(ts), 3)] if ts else None,
        "bytes_per_round_median": int(statistics.median(per_round)) if per_round else None,
        "upload_bytes_per_round_median": int(statistics.median(ups)) if ups else None,
    }


def run_ours(
    params: int, clients: int, r0: int, r2: int, timeout: float, chunk_bytes: int = 0
) -> dict[str, Any]:
    rounds = 1 + r0 + r2
    drop_from = 2 + r0 if r2 else 0
    port = free_port()
    env = {**os.environ, "LOG_LEVEL": "WARNING", "SEDNA_LOG_FORMAT": "json"}
    if chunk_bytes:  # a diagnostic: the frame size the server announces (default 4 MiB)
        env["AGG_CHUNK_BYTES"] = str(chunk_bytes)
    with tempfile.TemporaryDirectory(prefix="secagg-bench-") as tmp:
        out = Path(tmp) / "ours.json"
        me = [PY, "-m", "benchmarks.federated_secagg", "--params", str(params)]
        server = subprocess.Popen(
            [
                *me,
                "--role",
                "server",
                "--port",
                str(port),
                "--clients",
                str(clients),
                "--rounds",
                str(rounds),
                "--out",
                str(out),
            ],
            cwd=ROOT,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        wait_listening(port, server)
        proxy = CountingProxy(port).start()
        client_log = open(Path(tmp) / "clients.log", "w")  # noqa: SIM115  (closed below)
        procs = [
            subprocess.Popen(
                [
                    *me,
                    "--role",
                    "client",
                    "--port",
                    str(proxy.port),
                    "--cid",
                    str(i),
                    "--drop-from",
                    str(drop_from if i >= clients - DROPPERS else 0),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=client_log,
                start_new_session=True,
            )
            for i in range(clients)
        ]
        try:
            _, err = server.communicate(timeout=timeout)
        finally:
            _kill_tree([server, *procs])
            proxy.stop()
            client_log.close()
        if server.returncode != 0 or not out.exists():
            raise RuntimeError(f"our server failed ({server.returncode}):\n{err[-3000:]}")
        doc = json.loads(out.read_text())
        doc["dropouts_done"] = (Path(tmp) / "clients.log").read_text().count(DROPOUT_LOG)
    model_mb = params * 4 / 2**20
    spool_mb = doc["spool_peak_mb"]
    return {
        "system": "sedna-core" + (f" (chunk_bytes {chunk_bytes})" if chunk_bytes else ""),
        "doc": doc,
        "proxy": proxy,
        "drop_from": drop_from,
        "memory": {
            "server_peak_rss_mb": round(doc["peak_rss_mb"], 1),
            "server_idle_rss_mb": round(doc["base_rss_mb"], 1),
            "server_spool_peak_mb": round(spool_mb, 1),
            "spool_dir": doc["spool_dir"],
            "spool_filesystem": doc["spool_filesystem"],
            "server_peak_mb": round(doc["peak_rss_mb"] + spool_mb, 1),
            "peak_over_idle_in_models": round(
                (doc["peak_rss_mb"] + spool_mb - doc["base_rss_mb"]) / model_mb, 2
            ),
        },
    }


FAB_PYPROJECT = """[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "secaggbench"
version = "1.0.0"
description = "sedna-core benchmark: Flower's SecAgg+"
license = "Apache-2.0"
dependencies = []

[tool.flwr.app]
publisher = "sedna"

[tool.flwr.app.components]
serverapp = "secagg_bench_app:server_app"
clientapp = "secagg_bench_app:client_app"

[tool.flwr.app.config]
params = {params}
rounds = {rounds}
clients = {clients}
num-shares = {num_shares}
reconstruction-threshold = {reconstruction_threshold}
max-weight = {max_weight}
clipping-range = {clipping_range}
quantization-range = {quantization_range}
modulus-range = {modulus_range}
out = "{out}"
"""

FLOWER_DROPOUT_LOG = "ClientApp raised an exception"

# the bundle's module: assignments, since Flower checks the names statically before loading
FAB_MODULE = """import benchmarks.baselines.flower_secagg as _bench

server_app = _bench.server_app
client_app = _bench.client_app
"""


def run_flower(params: int, clients: int, r0: int, r2: int, timeout: float) -> dict[str, Any]:
    import psutil

    rounds = 1 + r0 + r2
    drop_from = 2 + r0 if r2 else 0
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="secagg-flower-") as tmp_s:
        tmp = Path(tmp_s)
        home, app = tmp / "home", tmp / "app"
        home.mkdir()
        app.mkdir()
        out = tmp / "flower.json"
        (home / "config.toml").write_text(
            f'[superlink]\ndefault = "bench"\n\n[superlink.bench]\n'
            f'address = "127.0.0.1:{port}"\ninsecure = true\n'
        )
        (app / "pyproject.toml").write_text(
            FAB_PYPROJECT.format(params=params, rounds=rounds, clients=clients, out=out, **SECAGG)
        )
        (app / "secagg_bench_app.py").write_text(FAB_MODULE)
        env = {
            **os.environ,
            "FLWR_HOME": str(home),
            "FLWR_TELEMETRY_ENABLED": "0",
            "FLWR_DISABLE_UPDATE_CHECK": "1",
            "GRPC_VERBOSITY": "ERROR",
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "PATH": os.pathsep.join([str(BIN), os.environ.get("PATH", "")]),
        }
        logs = open(tmp / "flower.log", "w")  # noqa: SIM115  (closed below)
        link = subprocess.Popen(
            [
                str(BIN / "flower-superlink"),
                "--insecure",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--disable-runtime-dependency-installation",
            ],
            cwd=tmp,
            env=env,
            stdout=logs,
            stderr=logs,
            start_new_session=True,
        )
        procs = [link]
        proxy: CountingProxy | None = None
        sampler: PeakSampler | None = None
        try:
            wait_listening(port, link)
            idle_link = psutil.Process(link.pid).memory_info().rss / 2**20
            sampler = PeakSampler(link.pid).start()
            proxy = CountingProxy(port).start()
            for i in range(clients):
                drop = drop_from if i >= clients - DROPPERS else 0
                procs.append(
                    subprocess.Popen(
                        [
                            str(BIN / "flower-supernode"),
                            "--insecure",
                            "--superlink",
                            f"127.0.0.1:{proxy.port}",
                            "--port",
                            str(free_port()),
                            "--node-config",
                            f"cid={i} drop-from={drop}",
                        ],
                        cwd=tmp,
                        env=env,
                        stdout=logs,
                        stderr=logs,
                        start_new_session=True,
                    )
                )
            subprocess.run(
                [str(BIN / "flwr"), "run", str(app), "bench"],
                cwd=tmp,
                env=env,
                stdout=logs,
                stderr=logs,
                check=True,
                timeout=120,
            )
            deadline = time.monotonic() + timeout
            while not out.exists():
                if time.monotonic() > deadline or link.poll() is not None:
                    raise RuntimeError(
                        "Flower's run did not finish; its log:\n"
                        + (tmp / "flower.log").read_text()[-3000:]
                    )
                time.sleep(0.5)  # polled: the ServerApp writes its result when it ends
            doc = json.loads(out.read_text())
        finally:
            if sampler is not None:
                sampler.stop()
            _kill_tree(procs)
            if proxy is not None:
                proxy.stop()
            logs.close()
        # each dropout is a ClientApp raising in the unmask stage, logged by its SuperNode
        doc["dropouts_done"] = (tmp / "flower.log").read_text().count(FLOWER_DROPOUT_LOG)
    assert sampler is not None and proxy is not None
    link_peak = sampler.peaks.get(link.pid, ("", 0.0))[1]
    others = {name: round(mb, 1) for pid, (name, mb) in sampler.peaks.items() if pid != link.pid}
    model_mb = params * 4 / 2**20
    peak = link_peak + doc["peak_rss_mb"]
    return {
        "system": "flower",
        "doc": doc,
        "proxy": proxy,
        "drop_from": drop_from,
        "memory": {
            "superlink_peak_rss_mb": round(link_peak, 1),
            "serverapp_peak_rss_mb": round(doc["peak_rss_mb"], 1),
            "server_idle_rss_mb": round(idle_link + doc["base_rss_mb"], 1),
            "server_peak_mb": round(peak, 1),
            "peak_over_idle_in_models": round(
                (peak - idle_link - doc["base_rss_mb"]) / model_mb, 2
            ),
            "other_server_side_processes_peak_rss_mb": others,
        },
    }


def report(run: dict[str, Any], params: int, clients: int, r0: int, r2: int) -> list[dict]:
    doc, proxy = run["doc"], run["proxy"]
    up, down = proxy.totals()
    rows = []
    phases = [("no dropouts", 0, 2, 1 + r0)]
    if r2:
        phases.append(
            (f"{DROPPERS} dropouts after the masked upload", DROPPERS, 2 + r0, 1 + r0 + r2)
        )
    for label, drops, first, last in phases:
        rows.append(
            {
                "bench": "federated_secagg",
                "system": run["system"],
                "phase": label,
                "dropouts": drops,
                "params": params,
                "clients": clients,
                **_windows_stats(doc["round_times"], doc["ends"], proxy, first, last),
                "round_times_s": [round(t, 3) for t in doc["round_times"]],
                **run["memory"],
                "clients_per_round": doc["clients_per_round"],
                "dropouts_done_in_job": doc["dropouts_done"],
                "client_connections": proxy.connections,
                "job_bytes_up": up,
                "job_bytes_down": down,
                "max_abs_error_vs_fedavg": doc["max_abs_error_vs_fedavg"],
                **({"server_stats": doc["server_stats"]} if "server_stats" in doc else {}),
                "secagg": SECAGG,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--role", choices=["bench", "server", "client"], default="bench")
    ap.add_argument("--quick", action="store_true", help="100k parameters, one round per phase")
    ap.add_argument("--params", type=int, default=1_000_000)
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--rounds-clean", type=int, default=2, help="rounds with every client")
    ap.add_argument("--rounds-dropout", type=int, default=2, help="rounds with 2 dropouts")
    ap.add_argument("--only", choices=["ours", "flower"], help="one system (no ratio line)")
    ap.add_argument(
        "--chunk-bytes", type=int, default=0, help="diagnostic: our server's AGG_CHUNK_BYTES"
    )
    ap.add_argument("--timeout", type=float, default=540.0, help="per system, seconds")
    ap.add_argument("--port", type=int)
    ap.add_argument("--cid", type=int, default=0)
    ap.add_argument("--drop-from", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)
    if args.role == "server":
        ours_server(args.port, args.params, args.clients, args.rounds, args.out)
        return 0
    if args.role == "client":
        ours_client(args.port, args.params, args.cid, args.drop_from)
        return 0
    params, r0, r2 = args.params, args.rounds_clean, args.rounds_dropout
    if args.quick:
        params, r0, r2 = 100_000, 1, 1
    load = os.getloadavg()
    results: dict[str, list[dict]] = {}
    systems = [args.only] if args.only else ["ours", "flower"]
    for system in systems:
        start = time.perf_counter()
        if system == "ours":
            run = run_ours(params, args.clients, r0, r2, args.timeout, args.chunk_bytes)
        else:
            run = run_flower(params, args.clients, r0, r2, args.timeout)
        rows = report(run, params, args.clients, r0, r2)
        for row in rows:
            row["wall_s"] = round(time.perf_counter() - start, 1)
            row["load_avg_1_5_15"] = [round(x, 2) for x in os.getloadavg()]
            print(json.dumps(row), flush=True)
        results[system] = rows
    if len(results) == 2:
        for ours, flower in zip(results["ours"], results["flower"], strict=True):
            print(
                json.dumps(
                    {
                        "bench": "federated_secagg",
                        "phase": ours["phase"],
                        "ratio_round_time_ours_over_flower": _ratio(
                            ours["median_round_s"], flower["median_round_s"]
                        ),
                        "ratio_server_peak_memory_ours_over_flower": _ratio(
                            ours["server_peak_mb"], flower["server_peak_mb"]
                        ),
                        "ratio_bytes_per_round_ours_over_flower": _ratio(
                            ours["bytes_per_round_median"], flower["bytes_per_round_median"]
                        ),
                        "ours_peak_over_idle_in_models": ours["peak_over_idle_in_models"],
                        "goal": "round time <= 0.5x Flower's; server memory <= 4 models",
                        "load_avg_at_start": [round(x, 2) for x in load],
                    }
                ),
                flush=True,
            )
    return 0


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


if __name__ == "__main__":
    sys.exit(main())
