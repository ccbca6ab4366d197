"""Many edges, one cloud: dynamic batching in BigModelService against Ray Serve and real Sedna.

Run from the repository root (8 minutes on a 2-core machine at load average 25-38)::

    RAY_USAGE_STATS_ENABLED=0 .venv/bin/python -m benchmarks.many_edges          # JSON lines
    RAY_USAGE_STATS_ENABLED=0 .venv/bin/python -m benchmarks.many_edges --quick  # 1 s points
    .venv/bin/python -m benchmarks.many_edges --tune   # the tuning runs behind the defaults

1, 8, 32 and 128 concurrent edges each send one-sample requests in a closed loop (one asyncio
task per edge, in one load process for one edge and two otherwise; the load processes live as
long as their server and run every point) for ``--seconds`` after a warm-up, against four cloud
services, each serving the model in one process:

- ``ours-per-request``: :class:`BigModelService` with ``max_batch_size=1`` (no batching), called
  as our :class:`JointInference` edge calls it: the binary tensor format over one predict
  stream (websocket) per edge;
- ``ours-batched``: the same with the default batching settings;
- ``sedna``: the real Sedna ``BigModelService`` (``../shared/peers/sedna-lib`` in
  ``.venv-sedna``; torch, which that venv lacks, is taken from ``.venv``'s site-packages, put
  last on its path), called with Sedna's JSON body over keep-alive HTTP, one connection per edge;
- ``ray-batched``: Ray Serve with ``@serve.batch`` (the same ``max_batch_size`` and a
  ``batch_wait_timeout_s`` equal to our ``max_queue_delay``), one replica, raw float32 bytes
  over keep-alive HTTP (its cheapest encoding), one connection per edge.

Two cloud models: the digits MLP of ``examples/demo/digits_cascade.py`` (64 inputs; fitted once
per run, in this process, and handed to the servers through a private temporary file) and a
small torch CNN on 3x64x64 inputs (MobileNet-style: a 3x3 convolution, six depthwise-separable
blocks, global pooling, a linear layer; seeded weights; eval mode, ``inference_mode``, one torch
thread, channels-last memory format). The model's own gain from batching (per-sample CPU time at
batch 1 over batch 16 and 32, on the server's core, with the server's torch settings) is printed
first: no server can beat it. Where ``taskset`` exists the server (with all its processes) runs
on core 0 and the load processes on core 1. One JSON line per point: throughput (answers
completed in the window per second, and the range over 0.5 s sub-windows), p50 and p99 latency
(ms), the server's CPU time per answer (all its processes; robust to other work on the machine,
unlike throughput), the mean batch for ours-batched, errors and the load average. Then the
goal point (CNN, 32 edges) is measured ``--rounds`` more times, systems interleaved, and its
ratios are given with their range over the rounds. A plot goes to ``docs/many_edges.png``.

Goal (CNN, 32 edges): ``ours-batched`` >= 5x ``ours-per-request`` and >= ``ray-batched``. The
batching defaults (``max_batch_size``, ``max_queue_delay``) and the channels-last layout were
chosen with ``--tune``: the same CNN on 3x32x32 inputs (an input size the scored run does not
use), 32 edges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path.insert(0, str(ROOT))

PLOT = ROOT / "docs" / "many_edges.png"
SEDNA_PYTHON = ROOT / ".venv-sedna" / "bin" / "python"
SEDNA_LIB = ROOT.parent / "shared" / "peers" / "sedna-lib"
SITE = (
    ROOT / ".venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
)
JOB = "edges"
EDGES = (1, 8, 32, 128)
SYSTEMS = ("ours-per-request", "ours-batched", "sedna", "ray-batched")
SHAPES = {"mlp": (64,), "cnn": (3, 64, 64), "cnn32": (3, 32, 32)}
TASKSET = shutil.which("taskset") if (os.cpu_count() or 1) >= 2 else None
#: the fitted digits MLP, written once per run by the benchmark itself (see fit_mlp_once)
MLP_FILE_ENV = "MANY_EDGES_MLP_FILE"
#: the CNN's memory layout; channels-last was chosen on the 3x32x32 tuning model (--tune)
LAYOUT_ENV = "MANY_EDGES_CNN_LAYOUT"
SUBWINDOW = 0.5  # seconds: throughput is also counted per sub-window, for its range


# -- the models (built the same way in every server process) -----------------------------------
def fit_mlp_once(directory: str) -> None:
    """Fit the digits MLP once and leave it where every server process of this run loads it.

    Fitting takes 5-20 s on a loaded 2-core machine and five processes need it (four servers
    and the bound measurement). The file is this run's own, in a private temporary directory
    (mode 0700) it created; nothing that crossed a network is ever unpickled.
    """
    from examples.demo.digits_cascade import cloud_model, load_split

    x_train, _, y_train, _ = load_split()
    path = Path(directory) / "mlp.pickle"
    path.write_bytes(pickle.dumps(cloud_model(x_train, y_train)))
    os.environ[MLP_FILE_ENV] = str(path)


def build_model(name: str, layout: str | None = None) -> Any:
    """A callable: float32 array (n, *shape) -> float32 probabilities (n, 10)."""
    if name == "mlp":
        cached = os.environ.get(MLP_FILE_ENV)
        if cached:
            proba = pickle.loads(Path(cached).read_bytes())  # this run's own file (fit_mlp_once)
        else:
            from examples.demo.digits_cascade import cloud_model, load_split

            x_train, _, y_train, _ = load_split()
            proba = cloud_model(x_train, y_train)
        return lambda x: np.asarray(proba.predict(x), dtype=np.float32)
    import torch
    from torch import nn

    # the server's settings: one intra-op thread (the server has one core: more threads would
    # only contend with its event loop), inference mode, channels-last (oneDNN's native layout)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    layout = layout or os.environ.get(LAYOUT_ENV, "channels_last")
    memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format

    def separable(cin: int, cout: int, stride: int) -> list[nn.Module]:
        # MobileNet's block: depthwise 3x3, then pointwise 1x1, each with batch norm and ReLU
        return [
            nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
            nn.ReLU(), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        ]  # fmt: skip

    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, 2, 1, bias=False),
        nn.BatchNorm2d(16),
        nn.ReLU(),
        *separable(16, 32, 1),
        *separable(32, 64, 2),
        *separable(64, 64, 1),
        *separable(64, 128, 2),
        *separable(128, 128, 1),
        *separable(128, 256, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(256, 10),
        nn.Softmax(dim=1),
    ).eval()  # eval: batch norm uses its running statistics, so batching changes nothing
    net = net.to(memory_format=memory_format)

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
            return net(t.contiguous(memory_format=memory_format)).numpy()

    return predict


class _Estimator:
    """The model as an estimator (``predict``) for our BigModelService."""

    def __init__(self, model: str) -> None:
        self.predict_fn = build_model(model)

    def predict(self, x: Any) -> np.ndarray:
        return self.predict_fn(x)  # type: ignore[no-any-return]


# -- servers (each in its own process: ``--serve SYSTEM``) -------------------------------------
def serve_ours(model: str, port: int, batched: bool, settings: dict[str, Any]) -> None:
    from sedna_core.jobs.joint_inference import BigModelService

    kw: dict[str, Any] = dict(settings)
    if not batched:
        kw["max_batch_size"] = 1
    svc = BigModelService(
        _Estimator(model),
        job_name=JOB,
        host="127.0.0.1",
        port=port,
        input_shape=SHAPES[model],
        input_dtype="float32",
        **kw,
    )
    svc.start(block=False)
    print("READY", flush=True)
    sys.stdin.read()
    svc.close()


def serve_ray(models: str, port: int, max_batch_size: int, wait: float) -> None:
    """One Ray cluster for every model (one application each, at ``/{model}``): Ray's start-up
    takes minutes on a loaded 2-core machine, so it is paid once."""
    import logging

    import ray
    from ray import serve
    from starlette.responses import Response

    for attempt in range(3):
        try:
            ray.init(
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
            break
        except Exception as exc:
            # Ray waits a fixed 30 s for its raylet to register, too short on a loaded 2-core
            # machine; the next attempt usually finds the processes warm
            print(f"ray.init attempt {attempt + 1} failed: {exc}", file=sys.stderr, flush=True)
            ray.shutdown()
    else:
        raise RuntimeError("Ray did not start in 3 attempts")
    serve.start(
        http_options={"host": "127.0.0.1", "port": port}, logging_config={"log_level": "ERROR"}
    )

    @serve.deployment(max_ongoing_requests=1024, ray_actor_options={"num_cpus": 1})
    class Cloud:
        def __init__(self, model: str) -> None:
            self.predict_fn = build_model(model)
            self.shape = SHAPES[model]

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=wait)
        async def predict(self, xs: list[np.ndarray]) -> list[np.ndarray]:
            out = self.predict_fn(np.concatenate(xs))
            return [out[i : i + 1] for i in range(len(xs))]

        async def __call__(self, request: Any) -> Any:
            x = np.frombuffer(await request.body(), dtype=np.float32).reshape(1, *self.shape)
            return Response((await self.predict(x)).tobytes())

    for model in models.split(","):
        serve.run(Cloud.bind(model), route_prefix=f"/{model}", name=model)
    _pin_tree_to_server_core()
    print("READY", flush=True)
    sys.stdin.read()
    serve.shutdown()
    ray.shutdown()


def _pin_tree_to_server_core() -> None:
    """Pin this process and every process it started (Ray's GCS, raylet, proxy, replicas), all
    their threads, to core 0. Ray starts unpinned: pinned to one busy core, its raylet misses
    the fixed 30 s Ray allows it to register."""
    import psutil

    if not TASKSET:
        return
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        subprocess.run([TASKSET, "-a", "-p", "-c", "0", str(proc.pid)], capture_output=True)


SEDNA_CLOUD = """
import sys
sys.path.append({site!r})  # torch from the project venv (the Sedna venv has none)
import numpy as np
from benchmarks.many_edges import SHAPES, build_model
from sedna.core.joint_inference import BigModelService

MODEL = {model!r}
predict_fn = build_model(MODEL)

class Cloud:
    def load(self, model_url=None, **kwargs):
        pass
    def predict(self, data, **kwargs):
        x = np.asarray(data, dtype=np.float32).reshape(-1, *SHAPES[MODEL])
        return predict_fn(x).tolist()

BigModelService(estimator=Cloud).start()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(cmd: list[str], core: int) -> list[str]:
    return [TASKSET, "-c", str(core), *cmd] if TASKSET else cmd


class Server:
    """One system's cloud service in its own (pinned) process."""

    def __init__(self, system: str, model: str, settings: dict[str, Any]) -> None:
        self.system = system
        self.model = model
        self.port = _free_port()
        env = dict(os.environ)
        if system == "sedna":
            self._model_file = tempfile.NamedTemporaryFile(suffix=".model")  # noqa: SIM115
            env.update(
                PYTHONPATH=f"{SEDNA_LIB}{os.pathsep}{ROOT}",
                BACKEND_TYPE="SKLEARN",
                BIG_MODEL_BIND_IP="127.0.0.1",
                BIG_MODEL_BIND_PORT=str(self.port),
                JOB_NAME=JOB,
                MODEL_URL=self._model_file.name,
                LC_SERVER="http://127.0.0.1:9",
                LC_PERIOD="3600",
            )
            code = SEDNA_CLOUD.format(site=str(SITE), model=model)
            cmd = [str(SEDNA_PYTHON), "-c", code]
        else:
            cmd = [
                sys.executable, "-m", "benchmarks.many_edges", "--serve", system,
                "--model", model, "--port", str(self.port), "--settings", json.dumps(settings),
            ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd if system == "ray-batched" else _pinned(cmd, 0),  # Ray pins itself once up
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = "Uvicorn running on" if system == "sedna" else "READY"
        seen: list[str] = []
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            seen.append(line)
            if ready in line:
                break
        else:
            raise RuntimeError(f"{system} did not start:\n" + "".join(seen[-30:]))
        # keep draining the server's output (Sedna's access log would fill the pipe)
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    @property
    def url(self) -> str:
        if self.system.startswith("ours"):
            return f"ws://127.0.0.1:{self.port}/{JOB}/predict/ws"
        if self.system == "sedna":
            return f"http://127.0.0.1:{self.port}/{JOB}/predict"
        return f"http://127.0.0.1:{self.port}/{self.model}"

    @property
    def metrics_url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}/metrics" if self.system.startswith("ours") else None

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server and every process it started (Ray's too)."""
        import psutil

        total = 0.0
        try:
            me = psutil.Process(self.proc.pid)
            procs = [me, *me.children(recursive=True)]
        except psutil.Error:
            return float("nan")
        for proc in procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:  # a process that ended meanwhile
                continue
            total += t.user + t.system
        return total

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        if self.system == "sedna":  # Sedna's uvicorn serves until a signal, not until EOF
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60 if self.system == "ray-batched" else 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- load (``--load``): closed-loop edges as asyncio tasks, one point per command ---------------
async def _edges(
    system: str, url: str, model: str, n: int, start: float, warmup: float, seconds: float
) -> dict[str, Any]:
    """Run ``n`` closed-loop edges from ``start`` (time.monotonic, shared by every process on
    the machine) for ``warmup + seconds``; the answers completed in the window count."""
    import aiohttp

    from sedna_core import wire

    rng = np.random.default_rng(0)
    shape = SHAPES[model]
    errors = refused = 0
    latencies: list[float] = []
    done: list[float] = []
    now = time.monotonic
    measure_from, stop_at = start + warmup, start + warmup + seconds
    await asyncio.sleep(max(0.0, start - now()))

    async def connect(session: aiohttp.ClientSession) -> Any:
        """A predict stream, opened again after a refusal, as an edge does on its next call
        (a storm of new connections can exceed the server's pending-connection cap)."""
        nonlocal refused
        while True:
            try:
                return await session.ws_connect(url)
            except aiohttp.ClientError:
                refused += 1
                if now() >= stop_at:
                    return None
                await asyncio.sleep(0.05)  # an edge's back-off before it tries again

    async def edge(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        x = rng.random((1, *shape), dtype=np.float32)
        ws = await connect(session) if system.startswith("ours") else None
        body: Any
        if ws is not None:
            body = wire.encode({"data": x})
        elif system == "sedna":
            body = json.dumps({"data": x.tolist()}).encode()
        else:
            body = x.tobytes()
        headers = {"Content-Type": "application/json"} if system == "sedna" else {}
        if system.startswith("ours") and ws is None:
            return
        while (t0 := now()) < stop_at:
            ok = True
            try:
                if ws is not None:
                    await ws.send_bytes(body)
                    msg = await ws.receive()
                    ok = msg.type is aiohttp.WSMsgType.BINARY
                else:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status == 200
            except aiohttp.ClientError:
                ok = False
            t1 = now()
            if measure_from <= t1 <= stop_at:  # completed in the window (slow peers too)
                if ok:
                    latencies.append(t1 - t0)
                    done.append(t1 - measure_from)
                errors += not ok
            if ws is not None and ws.closed:  # a broken stream: open a new one, as an edge does
                ws = await connect(session)
                if ws is None:
                    return
        if ws is not None:
            await ws.close()

    if n:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(edge(session) for _ in range(n)))
    return {"latencies": latencies, "done": done, "errors": errors, "refused": refused}


def serve_load(system: str, url: str, model: str) -> None:
    """A load process: one JSON command a line on stdin, one JSON result a line on stdout."""
    import aiohttp  # noqa: F401  (imported before READY: a point's clock starts after it)

    from sedna_core import wire  # noqa: F401

    print("READY", flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        out = asyncio.run(
            _edges(system, url, model, cmd["edges"], cmd["start"], cmd["warmup"], cmd["seconds"])
        )
        print(json.dumps(out), flush=True)


class LoadPool:
    """Two load processes on the load core, alive for one server (Python and aiohttp start in
    a second or more on a loaded machine: paid once per server, not once per point)."""

    def __init__(self, server: Server, model: str, procs: int = 2) -> None:
        cmd = [
            sys.executable, "-m", "benchmarks.many_edges", "--load", server.system,
            "--url", server.url, "--model", model,
        ]  # fmt: skip
        self.procs = [
            subprocess.Popen(
                _pinned(cmd, 1), cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )
            for _ in range(procs)
        ]
        for proc in self.procs:  # every process imported what it needs before the first point
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "READY":
                raise RuntimeError("a load process did not start (see its stderr above)")

    def run(self, edges: int, warmup: float, seconds: float, on_window: Any = None) -> list[dict]:
        """One point: ``edges`` split over the processes (one process for one edge).

        ``on_window(phase)`` is called at the window's start (``"start"``) and end (``"end"``),
        for what the caller measures on the server side.
        """
        used = 1 if edges == 1 else len(self.procs)
        split = [edges // used + (i < edges % used) for i in range(used)]
        split += [0] * (len(self.procs) - used)
        # a short lead lets every process reach its start before it
        start = time.monotonic() + 0.3
        for proc, n in zip(self.procs, split, strict=True):
            assert proc.stdin is not None
            cmd = {"edges": n, "start": start, "warmup": warmup, "seconds": seconds}
            proc.stdin.write(json.dumps(cmd) + "\n")
            proc.stdin.flush()
        if on_window is not None:
            time.sleep(max(0.0, start + warmup - time.monotonic()))
            on_window("start")
            time.sleep(max(0.0, start + warmup + seconds - time.monotonic()))
            on_window("end")
        docs = []
        for proc in self.procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("a load process ended early (see its stderr above)")
            docs.append(json.loads(line))
        return docs

    def close(self) -> None:
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.close()
        for proc in self.procs:
            proc.wait(30)


def _batch_samples(server: Server) -> tuple[float, float] | None:
    """ours-batched's (samples, model calls) so far, from its /metrics."""
    url = server.metrics_url
    if url is None:
        return None
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith(("sedna_ji_batch_samples_sum", "sedna_ji_batch_samples_count")):
            found[line.split()[0].split("_")[-1]] = float(line.split()[-1])
    return (found.get("sum", 0.0), found.get("count", 0.0))


def run_point(
    server: Server, pool: LoadPool, model: str, edges: int, warmup: float, seconds: float
) -> dict[str, Any]:
    marks: dict[str, Any] = {}

    def on_window(phase: str) -> None:
        marks[f"cpu_{phase}"] = server.cpu_seconds()
        marks[f"batch_{phase}"] = _batch_samples(server)

    docs = pool.run(edges, warmup, seconds, on_window)
    lat = np.asarray([x for d in docs for x in d["latencies"]]) * 1000
    done = np.asarray([x for d in docs for x in d["done"]])
    errors = sum(d["errors"] for d in docs)
    refused = sum(d["refused"] for d in docs)
    answers = len(lat)
    windows = max(1, round(seconds / SUBWINDOW))
    per_window = np.bincount(
        np.minimum((done / SUBWINDOW).astype(int), windows - 1), minlength=windows
    )
    row: dict[str, Any] = {
        "throughput_rps": round(answers / seconds, 1),
        "throughput_range": [round(float(per_window.min()) / SUBWINDOW, 1),
                             round(float(per_window.max()) / SUBWINDOW, 1)],
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if answers else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if answers else None,
        "requests": answers,
        "errors": errors,  # error answers in the window (not counted in the throughput)
        "refused_connections": refused,  # predict streams refused or dropped, then reopened
    }  # fmt: skip
    cpu = marks["cpu_end"] - marks["cpu_start"]
    row["server_cpu_ms_per_answer"] = round(cpu / answers * 1000, 3) if answers else None
    row["server_cpu_share"] = round(cpu / seconds, 2)  # of one core
    if marks["batch_start"] and marks["batch_end"]:
        samples = marks["batch_end"][0] - marks["batch_start"][0]
        calls = marks["batch_end"][1] - marks["batch_start"][1]
        row["mean_batch"] = round(samples / calls, 1) if calls else None
    row["load1"] = round(os.getloadavg()[0], 1)
    return row


def _ray_available() -> str | None:
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except Exception as exc:  # any import failure: report without Ray, saying why
        return f"ray[serve] does not import: {exc}"
    return None


def model_bound(model: str, layout: str | None = None, rounds: int = 5) -> dict[str, Any]:
    """The model's own batching gain: per-sample CPU seconds at batch 1 over batch 16 and 32.

    CPU time of this thread (not wall time): other work on a shared machine inflates wall time
    by a varying factor. Batch sizes are interleaved round by round, and the gain is given as
    the median of the rounds with their range.
    """
    predict = build_model(model, layout)
    sizes = (1, 16, 32)
    xs = {b: np.random.default_rng(0).random((b, *SHAPES[model]), dtype=np.float32) for b in sizes}
    for x in xs.values():
        predict(x)
    per_sample: dict[int, list[float]] = {b: [] for b in sizes}
    for _ in range(rounds):
        for b, x in xs.items():
            calls, t0 = 0, time.thread_time()
            while time.thread_time() - t0 < 0.1:
                predict(x)
                calls += 1
            per_sample[b].append((time.thread_time() - t0) / calls / b)
    doc: dict[str, Any] = {"bench": "many_edges", "part": "model_bound", "model": model}
    if model != "mlp":
        doc["layout"] = layout or os.environ.get(LAYOUT_ENV, "channels_last")
    for b in sizes:
        doc[f"cpu_ms_per_sample_batch{b}"] = round(float(np.median(per_sample[b])) * 1000, 3)
    for b in sizes[1:]:
        gains = np.asarray(per_sample[1]) / np.asarray(per_sample[b])
        doc[f"batch{b}_gain"] = round(float(np.median(gains)), 2)
        doc[f"batch{b}_gain_range"] = [round(float(gains.min()), 2), round(float(gains.max()), 2)]
    doc["load1"] = round(os.getloadavg()[0], 1)
    return doc


def _bound_in_server_core(model: str, layout: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.many_edges", "--bound", model]
    if layout:
        cmd += ["--layout", layout]
    out = subprocess.run(
        _pinned(cmd, 0), cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in ("mlp", "cnn") if any(r["model"] == m for r in rows)]
    fig, axes = plt.subplots(3, len(models), figsize=(5.5 * len(models), 10), squeeze=False)
    for j, model in enumerate(models):
        for system in SYSTEMS:
            pts = [r for r in rows if r["model"] == model and r["system"] == system]
            if not pts:
                continue
            xs = [p["edges"] for p in pts]
            ys = [p["throughput_rps"] for p in pts]
            lo = [y - p["throughput_range"][0] for y, p in zip(ys, pts, strict=True)]
            hi = [p["throughput_range"][1] - y for y, p in zip(ys, pts, strict=True)]
            axes[0][j].errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=system)
            axes[1][j].plot(xs, [p["p99_ms"] for p in pts], marker="o", label=system)
            axes[2][j].plot(
                xs, [p["server_cpu_ms_per_answer"] for p in pts], marker="o", label=system
            )
        axes[0][j].set_title(f"{model}: throughput (bars: 0.5 s sub-window range)")
        axes[0][j].set_ylabel("requests / s")
        axes[1][j].set_title(f"{model}: p99 latency")
        axes[1][j].set_ylabel("ms")
        axes[2][j].set_title(f"{model}: server CPU per answer")
        axes[2][j].set_ylabel("CPU ms")
        for ax in (axes[0][j], axes[1][j], axes[2][j]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrent edges")
            ax.grid(alpha=0.3)
        axes[1][j].set_yscale("log")
        axes[2][j].set_yscale("log")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Many edges, one cloud (1-sample requests, closed loop)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=80)
    plt.close(fig)


_STARTED = time.perf_counter()


def emit(doc: dict) -> None:
    """One JSON line, with the seconds since the benchmark started (``at_s``)."""
    print(json.dumps({**doc, "at_s": round(time.perf_counter() - _STARTED, 1)}), flush=True)


def _interval(values: list[float]) -> dict[str, Any]:
    return {"median": round(float(np.median(values)), 2),
            "range": [round(min(values), 2), round(max(values), 2)], "n": len(values)}  # fmt: skip


def main_bench(args: argparse.Namespace) -> None:
    from sedna_core.config.joint_inference import BigModelServiceConfig

    started = time.perf_counter()
    defaults = BigModelServiceConfig()
    settings = {
        "max_batch_size": defaults.max_batch_size,
        "max_queue_delay": defaults.max_queue_delay,
    }
    warmup, seconds = (0.5, 1.0) if args.quick else (0.5, 2.0)
    systems = list(args.systems.split(",")) if args.systems else list(SYSTEMS)
    models = args.models.split(",")
    why_no_ray = _ray_available() if "ray-batched" in systems else None
    if why_no_ray:
        emit({"bench": "many_edges", "system": "ray-batched", "skipped": why_no_ray})
        systems.remove("ray-batched")
    emit({"bench": "many_edges", "part": "setup", "taskset": bool(TASKSET), "settings": settings,
          "server_core": 0 if TASKSET else None, "load_core": 1 if TASKSET else None,
          "warmup_s": warmup, "seconds": seconds, "goal_rounds": args.rounds,
          "load1": round(os.getloadavg()[0], 1)})  # fmt: skip
    edge_counts = [int(e) for e in args.edge_counts.split(",")]
    rows: list[dict] = []
    goal_rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="many-edges-") as private:
        if "mlp" in models or "ray-batched" in systems:
            fit_mlp_once(private)
        for model in models:
            emit(_bound_in_server_core(model))
        ray = None
        if "ray-batched" in systems:
            try:
                ray = Server("ray-batched", args.models, settings)
            except RuntimeError as exc:  # report the others, and say exactly why Ray is missing
                emit({"bench": "many_edges", "system": "ray-batched", "skipped": str(exc)[-600:]})
                systems.remove("ray-batched")
        try:
            for model in models:
                rows += _sweep(model, systems, ray, settings, edge_counts, warmup, seconds, args)
                goal_rows += [r for r in rows if r["model"] == model and r.get("goal_round")]
        finally:
            if ray is not None:
                ray.close()
    rows = [r for r in rows if not r.get("goal_round")]
    _summaries(rows, goal_rows, models, edge_counts)
    emit({"bench": "many_edges", "part": "total",
          "seconds": round(time.perf_counter() - started, 1),
          "load1": round(os.getloadavg()[0], 1)})  # fmt: skip
    if not args.no_plot:
        plot(rows)


def _sweep(
    model: str,
    systems: list[str],
    ray: Server | None,
    settings: dict[str, Any],
    edge_counts: list[int],
    warmup: float,
    seconds: float,
    args: argparse.Namespace,
) -> list[dict]:
    """Every point of one model, then (CNN at 32 edges) the goal rounds, systems interleaved."""
    rows: list[dict] = []
    goal = model == "cnn" and 32 in edge_counts and args.rounds > 0
    kept: dict[str, tuple[Server, LoadPool]] = {}  # the goal's systems, alive for its rounds
    try:
        for system in systems:
            if system == "ray-batched":
                assert ray is not None
                ray.model = model
                server = ray
            else:
                server = Server(system, model, settings)
            pool = LoadPool(server, model)
            keep = goal and system != "sedna"  # Sedna answers nothing in a window at 32 edges
            if keep:
                kept[system] = (server, pool)
            try:
                for edges in edge_counts:
                    row = {"bench": "many_edges", "model": model, "system": system}
                    row["edges"] = edges
                    row.update(run_point(server, pool, model, edges, warmup, seconds))
                    rows.append(row)
                    emit(row)
            finally:
                if not keep:
                    pool.close()
                    if server is not ray:
                        server.close()
        for r in range(args.rounds if goal else 0):
            for system, (server, pool) in kept.items():
                if system == "ray-batched":
                    server.model = model
                row = {"bench": "many_edges", "model": model, "system": system, "edges": 32,
                       "goal_round": r + 1}  # fmt: skip
                row.update(run_point(server, pool, model, 32, warmup, seconds))
                rows.append(row)
                emit(row)
    finally:
        for server, pool in kept.values():
            pool.close()
            if server is not ray:
                server.close()
    return rows


def _summaries(
    rows: list[dict], goal_rows: list[dict], models: list[str], edge_counts: list[int]
) -> None:
    by = {(r["model"], r["system"], r["edges"]): r for r in rows}
    for model in models:
        for edges in edge_counts:
            batched = by.get((model, "ours-batched", edges))
            summary: dict[str, Any] = {"bench": "many_edges", "part": "ratios", "model": model,
                                       "edges": edges}  # fmt: skip
            for peer in ("ours-per-request", "sedna", "ray-batched"):
                other = by.get((model, peer, edges))
                if batched and other and other["throughput_rps"]:
                    summary[f"batched_over_{peer}"] = round(
                        batched["throughput_rps"] / other["throughput_rps"], 2
                    )
            emit(summary)
    # the goal point: the sweep's measurement and the goal rounds, each round a same-moment pair
    rounds: dict[int, dict[str, dict]] = {0: {}}
    for r in rows:
        if r["model"] == "cnn" and r["edges"] == 32:
            rounds[0][r["system"]] = r
    for r in goal_rows:
        rounds.setdefault(r["goal_round"], {})[r["system"]] = r
    tput: dict[str, list[float]] = {"per_request": [], "ray": []}
    cpu: dict[str, list[float]] = {"per_request": [], "ray": []}
    for pts in rounds.values():
        b = pts.get("ours-batched")
        if not b or not b["throughput_rps"]:
            continue
        for key, peer in (("per_request", "ours-per-request"), ("ray", "ray-batched")):
            p = pts.get(peer)
            if p and p["throughput_rps"]:
                tput[key].append(b["throughput_rps"] / p["throughput_rps"])
            if p and p["server_cpu_ms_per_answer"] and b["server_cpu_ms_per_answer"]:
                cpu[key].append(p["server_cpu_ms_per_answer"] / b["server_cpu_ms_per_answer"])
    if tput["per_request"]:
        doc: dict[str, Any] = {"bench": "many_edges", "part": "goal", "model": "cnn", "edges": 32}
        doc["batched_over_per_request"] = _interval(tput["per_request"])
        doc["goal_5x"] = doc["batched_over_per_request"]["median"] >= 5
        doc["cpu_per_answer_per_request_over_batched"] = _interval(cpu["per_request"])
        if tput["ray"]:
            doc["batched_over_ray"] = _interval(tput["ray"])
            doc["goal_ge_ray"] = doc["batched_over_ray"]["median"] >= 1
            doc["cpu_per_answer_ray_over_batched"] = _interval(cpu["ray"])
        emit(doc)


def main_tune(args: argparse.Namespace) -> None:
    """Tuning runs (CNN on 3x32x32, 32 edges): not the scored model or input size."""
    for layout in ("contiguous", "channels_last"):
        emit({**_bound_in_server_core("cnn32", layout), "part": "tune_layout"})
    warmup, seconds = 0.5, 2.0
    grid = [{"max_batch_size": b, "workers": 1} for b in (8, 16, 32, 64)]
    grid += [
        {"max_batch_size": 32, "workers": 2, "max_queue_delay": d} for d in (0.0005, 0.002, 0.01)
    ]
    for settings in grid:
        server = Server("ours-batched", "cnn32", settings)
        pool = LoadPool(server, "cnn32")
        try:
            row = {"bench": "many_edges", "part": "tune", "model": "cnn32", "edges": 32, **settings}
            row.update(run_point(server, pool, "cnn32", 32, warmup, seconds))
            emit(row)
        finally:
            pool.close()
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter points (1 s each)")
    parser.add_argument("--tune", action="store_true", help="the tuning runs behind the defaults")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--edge-counts", default=",".join(map(str, EDGES)))
    parser.add_argument(
        "--rounds", type=int, default=4, help="extra interleaved rounds of the goal point"
    )
    parser.add_argument("--bound", help=argparse.SUPPRESS)
    parser.add_argument("--layout", help=argparse.SUPPRESS)
    # internal: a server or a load process
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        settings = json.loads(args.settings)
        if args.serve == "ray-batched":
            serve_ray(
                args.model, args.port, settings["max_batch_size"], settings["max_queue_delay"]
            )
        else:
            serve_ours(args.model, args.port, args.serve == "ours-batched", settings)
    elif args.load:
        serve_load(args.load, args.url, args.model)
    elif args.bound:
        print(json.dumps(model_bound(args.bound, args.layout)), flush=True)
    elif args.tune:
        main_tune(args)
    else:
        main_bench(args)


if __name__ == "__main__":
    main()
