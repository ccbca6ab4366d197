"""Many edges, one cloud: dynamic batching in BigModelService against Ray Serve and real Sedna.

Run from the repository root (about 5 minutes on a shared 2-core machine)::

    RAY_USAGE_STATS_ENABLED=0 .venv/bin/python -m benchmarks.many_edges          # JSON lines
    RAY_USAGE_STATS_ENABLED=0 .venv/bin/python -m benchmarks.many_edges --quick  # shorter points
    .venv/bin/python -m benchmarks.many_edges --tune   # the tuning runs behind the defaults

1, 8, 32 and 128 concurrent edges each send one-sample requests in a closed loop (one asyncio
task per edge, in one load process for one edge and two otherwise) for ``--seconds`` after a
warm-up, against four cloud services, each serving the model in one process:

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

Two cloud models: the digits MLP of ``examples/demo/digits_cascade.py`` (64 inputs) and a small
torch CNN on 3x64x64 inputs (MobileNet-style: a 3x3 convolution, six depthwise-separable
blocks, global pooling, a linear layer; seeded weights; eval mode; one torch thread). The
model's own gain from batching (per-sample time at batch 1 over batch 32, on the server's core)
is printed first: no server can beat it. Where ``taskset`` exists the server (with all its
processes) runs on core 0 and the load processes on core 1. One JSON line per point:
throughput (requests/s, answers completed in the window), p50 and p99 latency (ms) and errors;
a plot goes to ``docs/many_edges.png``.

Goal (CNN, 32 edges): ``ours-batched`` >= 5x ``ours-per-request`` and >= ``ray-batched``. The
batching defaults (``max_batch_size``, ``max_queue_delay``) were chosen with ``--tune``: the same
CNN on 3x32x32 inputs (an input size the scored run does not use), 32 edges.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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


# -- the models (built the same way in every server process) -----------------------------------
def build_model(name: str) -> Any:
    """A callable: float32 array (n, *shape) -> float32 probabilities (n, 10)."""
    if name == "mlp":
        from examples.demo.digits_cascade import cloud_model, load_split

        x_train, _, y_train, _ = load_split()
        proba = cloud_model(x_train, y_train)
        return lambda x: np.asarray(proba.predict(x), dtype=np.float32)
    import torch
    from torch import nn

    torch.set_num_threads(1)
    torch.manual_seed(0)

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

    def predict(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()

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
        import threading

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

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(60 if self.system == "ray-batched" else 15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- load (``--load``): closed-loop edges as asyncio tasks --------------------------------------
async def _edges(system: str, url: str, model: str, n: int, warmup: float, seconds: float) -> Any:
    import aiohttp

    from sedna_core import wire

    rng = np.random.default_rng(0)
    shape = SHAPES[model]
    errors = 0
    latencies: list[float] = []
    loop_time = time.perf_counter
    start = loop_time()
    measure_from, stop_at = start + warmup, start + warmup + seconds

    async def edge(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal errors
        x = rng.random((1, *shape), dtype=np.float32)
        ws = await session.ws_connect(url) if system.startswith("ours") else None
        body: Any
        if ws is not None:
            body = wire.encode({"data": x})
        elif system == "sedna":
            body = json.dumps({"data": x.tolist()}).encode()
        else:
            body = x.tobytes()
        while (t0 := loop_time()) < stop_at:
            ok = True
            if ws is not None:
                await ws.send_bytes(body)
                msg = await ws.receive()
                ok = msg.type is aiohttp.WSMsgType.BINARY
            else:
                headers = {"Content-Type": "application/json"} if system == "sedna" else {}
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    ok = resp.status == 200
            t1 = loop_time()
            if measure_from <= t1 <= stop_at:  # completed in the window (slow peers too)
                latencies.append(t1 - t0)
                errors += not ok
        if ws is not None:
            await ws.close()

    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(edge(session, k) for k in range(n)))
    return {"latencies": latencies, "errors": errors}


def run_point(server: Server, model: str, edges: int, warmup: float, seconds: float) -> dict:
    procs = 1 if edges == 1 else 2
    split = [edges // procs + (i < edges % procs) for i in range(procs)]
    children = [
        subprocess.Popen(
            _pinned(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.many_edges",
                    "--load",
                    server.system,
                    "--url",
                    server.url,
                    "--model",
                    model,
                    "--edges",
                    str(n),
                    "--warmup",
                    str(warmup),
                    "--seconds",
                    str(seconds),
                ],
                1,
            ),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in split
    ]
    lat: list[float] = []
    errors = 0
    for child in children:
        out, _ = child.communicate(timeout=300)
        doc = json.loads(out.strip().splitlines()[-1])
        lat += doc["latencies"]
        errors += doc["errors"]
    arr = np.asarray(lat) * 1000
    return {
        "throughput_rps": round(len(lat) / seconds, 1),
        "p50_ms": round(float(np.percentile(arr, 50)), 2) if len(arr) else None,
        "p99_ms": round(float(np.percentile(arr, 99)), 2) if len(arr) else None,
        "requests": len(lat),
        "errors": errors,
    }


def _ray_available() -> str | None:
    try:
        import ray  # noqa: F401
        from ray import serve  # noqa: F401
    except Exception as exc:  # any import failure: report without Ray, saying why
        return f"ray[serve] does not import: {exc}"
    return None


def model_bound(model: str, seconds: float = 1.0) -> dict[str, Any]:
    """The model's own batching gain: per-sample seconds at batch 1 over those at batch 32."""
    predict = build_model(model)
    per_sample = {}
    for batch in (1, 32):
        x = np.random.default_rng(0).random((batch, *SHAPES[model]), dtype=np.float32)
        predict(x)
        calls, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            predict(x)
            calls += 1
        per_sample[batch] = (time.perf_counter() - t0) / calls / batch
    return {
        "bench": "many_edges", "part": "model_bound", "model": model,
        "ms_per_sample_batch1": round(per_sample[1] * 1000, 3),
        "ms_per_sample_batch32": round(per_sample[32] * 1000, 3),
        "batch32_gain": round(per_sample[1] / per_sample[32], 2),
    }  # fmt: skip


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [m for m in ("mlp", "cnn") if any(r["model"] == m for r in rows)]
    fig, axes = plt.subplots(2, len(models), figsize=(5.5 * len(models), 7), squeeze=False)
    for j, model in enumerate(models):
        for system in SYSTEMS:
            pts = [r for r in rows if r["model"] == model and r["system"] == system]
            if not pts:
                continue
            xs = [p["edges"] for p in pts]
            axes[0][j].plot(xs, [p["throughput_rps"] for p in pts], marker="o", label=system)
            axes[1][j].plot(xs, [p["p99_ms"] for p in pts], marker="o", label=system)
        axes[0][j].set_title(f"{model}: throughput")
        axes[0][j].set_ylabel("requests / s")
        axes[1][j].set_title(f"{model}: p99 latency")
        axes[1][j].set_ylabel("ms")
        for ax in (axes[0][j], axes[1][j]):
            ax.set_xscale("log", base=2)
            ax.set_xlabel("concurrent edges")
            ax.grid(alpha=0.3)
        axes[1][j].set_yscale("log")
    axes[0][0].legend(fontsize=8)
    fig.suptitle("Many edges, one cloud (1-sample requests, closed loop)")
    fig.tight_layout()
    fig.savefig(PLOT, dpi=90)
    plt.close(fig)


def emit(doc: dict) -> None:
    print(json.dumps(doc), flush=True)


def main_bench(args: argparse.Namespace) -> None:
    from sedna_core.config.joint_inference import BigModelServiceConfig

    defaults = BigModelServiceConfig()
    settings = {
        "max_batch_size": defaults.max_batch_size,
        "max_queue_delay": defaults.max_queue_delay,
    }
    warmup, seconds = (0.5, 1.5) if args.quick else (1.0, 2.5)
    systems = list(args.systems.split(",")) if args.systems else list(SYSTEMS)
    why_no_ray = _ray_available() if "ray-batched" in systems else None
    if why_no_ray:
        emit({"bench": "many_edges", "system": "ray-batched", "skipped": why_no_ray})
        systems.remove("ray-batched")
    emit({"bench": "many_edges", "part": "setup", "taskset": bool(TASKSET), "settings": settings,
          "server_core": 0 if TASKSET else None, "load_core": 1 if TASKSET else None,
          "warmup_s": warmup, "seconds": seconds})  # fmt: skip
    edge_counts = [int(e) for e in args.edge_counts.split(",")]
    rows: list[dict] = []
    started = time.perf_counter()
    for model in args.models.split(","):
        out = subprocess.run(
            _pinned([sys.executable, "-m", "benchmarks.many_edges", "--bound", model], 0),
            cwd=ROOT, capture_output=True, text=True, check=True, timeout=300,
        ).stdout  # fmt: skip
        emit(json.loads(out.strip().splitlines()[-1]))
    ray = None
    if "ray-batched" in systems:
        try:
            ray = Server("ray-batched", args.models, settings)
        except RuntimeError as exc:  # report the others, and say exactly why Ray is missing
            emit({"bench": "many_edges", "system": "ray-batched", "skipped": str(exc)[-600:]})
            systems.remove("ray-batched")
    try:
        for model in args.models.split(","):
            for system in systems:
                if system == "ray-batched":
                    assert ray is not None
                    ray.model = model
                    server = ray
                else:
                    server = Server(system, model, settings)
                try:
                    for edges in edge_counts:
                        row = {"bench": "many_edges", "model": model, "system": system}
                        row["edges"] = edges
                        row.update(run_point(server, model, edges, warmup, seconds))
                        rows.append(row)
                        emit(row)
                finally:
                    if server is not ray:
                        server.close()
    finally:
        if ray is not None:
            ray.close()
    by = {(r["model"], r["system"], r["edges"]): r["throughput_rps"] for r in rows}
    for model in args.models.split(","):
        for edges in edge_counts:
            batched = by.get((model, "ours-batched", edges))
            summary: dict[str, Any] = {"bench": "many_edges", "part": "ratios", "model": model,
                                       "edges": edges}  # fmt: skip
            for peer in ("ours-per-request", "sedna", "ray-batched"):
                other = by.get((model, peer, edges))
                if batched and other:
                    summary[f"batched_over_{peer}"] = round(batched / other, 2)
            emit(summary)
    cnn = by.get(("cnn", "ours-batched", 32)), by.get(("cnn", "ours-per-request", 32))
    ray_cnn = by.get(("cnn", "ray-batched", 32))
    if all(cnn):
        emit({"bench": "many_edges", "part": "goal", "model": "cnn", "edges": 32,
              "batched_over_per_request": round(cnn[0] / cnn[1], 2),
              "goal_5x": cnn[0] >= 5 * cnn[1],
              "batched_over_ray": round(cnn[0] / ray_cnn, 2) if ray_cnn else None,
              "goal_ge_ray": (cnn[0] >= ray_cnn) if ray_cnn else None})  # fmt: skip
    emit(
        {"bench": "many_edges", "part": "total", "seconds": round(time.perf_counter() - started, 1)}
    )
    if not args.no_plot:
        plot(rows)


def main_tune(args: argparse.Namespace) -> None:
    """Tuning runs (CNN on 3x32x32, 32 edges): not the scored model or input size."""
    warmup, seconds = 0.5, 2.0
    grid = [{"max_batch_size": b, "workers": 1} for b in (8, 16, 32, 64)]
    grid += [
        {"max_batch_size": 32, "workers": 2, "max_queue_delay": d} for d in (0.0005, 0.002, 0.01)
    ]
    for settings in grid:
        server = Server("ours-batched", "cnn32", settings)
        try:
            row = {"bench": "many_edges", "part": "tune", "model": "cnn32", "edges": 32, **settings}
            row.update(run_point(server, "cnn32", 32, warmup, seconds))
            emit(row)
        finally:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter points (1.5 s each)")
    parser.add_argument("--tune", action="store_true", help="the tuning runs behind the defaults")
    parser.add_argument("--models", default="mlp,cnn")
    parser.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)}")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--edge-counts", default=",".join(map(str, EDGES)))
    parser.add_argument("--bound", help=argparse.SUPPRESS)
    # internal: a server or a load process
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--settings", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--edges", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
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
        out = asyncio.run(
            _edges(args.load, args.url, args.model, args.edges, args.warmup, args.seconds)
        )
        print(json.dumps(out), flush=True)
    elif args.bound:
        print(json.dumps(model_bound(args.bound)), flush=True)
    elif args.tune:
        main_tune(args)
    else:
        main_bench(args)


if __name__ == "__main__":
    main()
