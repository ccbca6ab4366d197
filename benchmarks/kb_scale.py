"""How the knowledge base's cost grows with its number of tasks (issue 20).

For 10, 1k and 10k tasks, each with a 10 KB model (``.npy``, no pickle: a format the KB
verifies by parsing) and a sample set (a small CSV with its row count in the index), on SQLite
and on PostgreSQL, through the real HTTP service (``KnowledgeBaseServer`` in its own process):

* upload rate: every file through ``KnowledgeBaseClient.upload_file`` over ``--connections``
  concurrent clients;
* index publish time: ``update_index`` of the whole index (validation on both sides, the
  artifact check and the database transaction included);
* attribute-query latency, p50/p99 of ``--queries`` calls each: by a unique attribute
  (``site``: one task) and by a shared one (``region``: ``tasks/100`` tasks, at most 100);
* the edge: ``get_index`` (index fetch) and ``EdgeKnowledgeCache.refresh`` from empty (index +
  every file) and after one task's model changed (incremental refresh);
* server memory: resident and peak resident set of the server process (``/proc``);
* CPU seconds (server process + client) of the publish, per query and of the cold refresh:
  on a loaded machine wall time mostly measures the wait for a core.

The comparison peer is the same service at 10 tasks (ratios, same run). PostgreSQL is a
throwaway server started like the tests start theirs (``tests/knowledge_base/conftest.py``);
without its binaries that backend is skipped with the reason printed.

Run: ``.venv/bin/python benchmarks/kb_scale.py`` (JSON lines; ``--plot docs/kb_query_latency.png``
draws query latency against tasks).
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]
os.environ.setdefault("LOG_LEVEL", "WARNING")

from sedna_core.knowledge_base import (  # noqa: E402
    EdgeKnowledgeCache,
    KnowledgeBaseClient,
    KnowledgeBaseServer,
)

MODEL_BYTES = 10 * 1024


def model_bytes(i: int) -> bytes:
    """A distinct 10 KB ``.npy`` file (128-byte header + 2528 float32)."""
    buf = io.BytesIO()
    np.save(buf, np.arange(2528, dtype=np.float32) + i, allow_pickle=False)
    data = buf.getvalue()
    assert len(data) == MODEL_BYTES, len(data)
    return data


def samples_bytes(i: int) -> bytes:
    rows = "\n".join(f"{i},{j},{(i * 31 + j) % 7}" for j in range(8))
    return f"task,row,label\n{rows}\n".encode()


def serve(data_dir: str, db_url: str) -> None:
    """The server process: prints its URL, serves until stdin closes."""
    server = KnowledgeBaseServer(data_dir=data_dir, db_url=db_url, port=0, host="127.0.0.1")
    server.start_in_background()
    print(server.url, flush=True)
    sys.stdin.read()
    server.stop_background()


def proc_memory_mb(pid: int) -> dict[str, float]:
    out = {}
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                out[key] = int(value.split()[0]) / 1024
    return {"server_rss_mb": round(out["VmRSS"], 1), "server_peak_rss_mb": round(out["VmHWM"], 1)}


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by the server process and by this one: on a
    loaded machine wall times mostly measure the wait for a core, CPU time the work done."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    server = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return server + time.process_time()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def as_ref(record: dict[str, Any]) -> dict[str, Any]:
    """The index's reference to an uploaded file (the upload record says more)."""
    return {k: v for k, v in record.items() if k != "verified_as"}


def build_index(refs: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> dict[str, Any]:
    groups = []
    for i, (model, samples) in enumerate(refs):
        groups.append(
            {
                "entry": f"g{i}",
                "deployed": True,
                "model": model,
                "tasks": [
                    {
                        "entry": f"t{i}",
                        "task_id": i,
                        "sample_num": 8,
                        "meta_attr": {"region": f"r{i % 100}", "site": f"s{i}", "season": i % 4},
                        **({"samples": samples} if samples else {}),
                    }
                ],
            }
        )
    return {
        "schema": "sedna.lifelong.task_index",
        "schema_version": 1,
        "create_time": time.time(),
        "job": "kb-scale",
        "seen_task": {"task_groups": groups},
        "unseen_task": {"task_groups": []},
    }


def measure(
    backend: str, db_url: str, tasks: int, connections: int, queries: int, sample_files: bool
) -> dict:
    work = Path(tempfile.mkdtemp(prefix="kb-scale-"))
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(work / "kb"), db_url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        if not url.startswith("http"):
            raise RuntimeError(f"the knowledge base did not start (exit {proc.wait()})")
        local = threading.local()
        clients: list[KnowledgeBaseClient] = []

        def client() -> KnowledgeBaseClient:
            if not hasattr(local, "c"):
                local.c = KnowledgeBaseClient(url, timeout=120)
                clients.append(local.c)
            return local.c

        def upload(i: int) -> tuple[dict[str, Any], dict[str, Any] | None]:
            c = client()
            m = c.upload_file(model_bytes(i), name=f"m{i}.npy", format="npy")
            if not sample_files:
                return as_ref(m), None
            s = c.upload_file(samples_bytes(i), name=f"s{i}.csv", format="csv")
            return as_ref(m), as_ref(s)

        t0 = time.perf_counter()
        with ThreadPoolExecutor(connections) as pool:
            refs = list(pool.map(upload, range(tasks)))
        upload_s = time.perf_counter() - t0
        files = tasks * (2 if sample_files else 1)
        main = KnowledgeBaseClient(url, timeout=120)
        doc = build_index(refs)
        t0, c0 = time.perf_counter(), cpu_s(proc.pid)
        main.update_index(doc)
        publish_s, publish_cpu = time.perf_counter() - t0, cpu_s(proc.pid) - c0
        latency: dict[str, list[float]] = {"site": [], "region": []}
        rng = np.random.default_rng(0)
        c0 = cpu_s(proc.pid)
        for _ in range(queries):
            i = int(rng.integers(tasks))
            for key, value in (("site", f"s{i}"), ("region", f"r{i % 100}")):
                t0 = time.perf_counter()
                rows = main.query({key: value})
                latency[key].append((time.perf_counter() - t0) * 1e3)
                expected = 1 if key == "site" else len(range(i % 100, tasks, 100))
                assert len(rows) == expected, (key, value, len(rows), expected)
        query_cpu_ms = (cpu_s(proc.pid) - c0) / (2 * queries) * 1e3
        t0 = time.perf_counter()
        main.get_index()
        fetch_s = time.perf_counter() - t0
        cache = EdgeKnowledgeCache(work / "edge", main)
        t0, c0 = time.perf_counter(), cpu_s(proc.pid)
        assert cache.refresh(), cache.last_error
        cold_s, cold_cpu = time.perf_counter() - t0, cpu_s(proc.pid) - c0
        # one task's model retrained: upload it, republish, refresh the edge incrementally
        new_model = as_ref(main.upload_file(model_bytes(tasks + 1), name="m0.npy", format="npy"))
        doc["seen_task"]["task_groups"][0]["model"] = new_model
        t0 = time.perf_counter()
        main.update_index(doc)
        republish_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        assert cache.refresh(), cache.last_error
        warm_s = time.perf_counter() - t0
        memory = proc_memory_mb(proc.pid)
        for c in [*clients, main]:
            c.close()
        return {
            "bench": "kb_scale",
            "backend": backend,
            "tasks": tasks,
            "files": files,
            "connections": connections,
            "upload_files_per_s": round(files / upload_s, 1),
            "upload_s": round(upload_s, 2),
            "publish_s": round(publish_s, 3),
            "publish_cpu_s": round(publish_cpu, 3),
            "republish_s": round(republish_s, 3),
            "index_bytes": len(json.dumps(doc)),
            "query_site_p50_ms": round(statistics.median(latency["site"]), 2),
            "query_site_p99_ms": round(percentile(latency["site"], 0.99), 2),
            "query_region_p50_ms": round(statistics.median(latency["region"]), 2),
            "query_region_p99_ms": round(percentile(latency["region"], 0.99), 2),
            "query_cpu_ms": round(query_cpu_ms, 2),
            "region_rows": len(range(0, tasks, 100)),
            "queries": queries,
            "edge_index_fetch_s": round(fetch_s, 3),
            "edge_cold_refresh_s": round(cold_s, 2),
            "edge_cold_refresh_cpu_s": round(cold_cpu, 2),
            "edge_incremental_refresh_s": round(warm_s, 3),
            **memory,
        }
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(timeout=60)


def postgres_cluster() -> tuple[Any, str] | tuple[None, str]:
    """A throwaway PostgreSQL server (the tests' helper), or ``(None, why not)``."""
    path = ROOT / "tests" / "knowledge_base" / "conftest.py"
    spec = importlib.util.spec_from_file_location("kb_test_conftest", path)
    assert spec and spec.loader
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    bindir = conftest._pg_bindir()
    if bindir is None:
        return None, "no PostgreSQL server binaries (initdb, pg_ctl) found"
    if importlib.util.find_spec("psycopg") is None:
        return None, "the psycopg driver is not installed"
    try:
        cluster = conftest._PgCluster(bindir)
    except BaseException as exc:  # pytest.skip raises a BaseException
        return None, str(exc)
    return cluster, cluster.start()


def new_pg_database(base: str, name: str) -> str:
    import psycopg

    dsn = base.replace("postgresql+psycopg://", "postgresql://") + "/postgres"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", default="10,1000,10000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--sample-files",
        action="store_true",
        help="also upload each task's sample set as a file (twice the uploads and downloads)",
    )
    parser.add_argument("--plot", help="write query latency vs tasks to this PNG")
    parser.add_argument(
        "--plot-with",
        action="append",
        default=[],
        metavar="JSONL",
        help="also draw the kb_scale rows of an earlier run's output (another backend's run)",
    )
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(*args.serve)
        return 0
    sizes = [int(n) for n in args.tasks.split(",")]
    rows = []
    for backend in args.backends.split(","):
        cluster = None
        if backend == "postgresql":
            cluster, base = postgres_cluster()
            if cluster is None:
                print(json.dumps({"bench": "kb_scale", "backend": backend, "skipped": base}))
                continue
        try:
            for n in sizes:
                if backend == "sqlite":
                    url = f"sqlite:///{tempfile.mkdtemp(prefix='kb-scale-db-')}/kb.sqlite3"
                else:
                    url = new_pg_database(base, f"kb_scale_{n}")
                row = measure(backend, url, n, args.connections, args.queries, args.sample_files)
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            if cluster is not None:
                cluster.stop()
    for backend in {r["backend"] for r in rows}:
        mine = sorted((r for r in rows if r["backend"] == backend), key=lambda r: r["tasks"])
        if len(mine) > 1:
            first, last = mine[0], mine[-1]
            print(
                json.dumps(
                    {
                        "bench": "kb_scale_ratio",
                        "backend": backend,
                        "tasks": [first["tasks"], last["tasks"]],
                        "query_site_p99_ratio": round(
                            last["query_site_p99_ms"] / first["query_site_p99_ms"], 2
                        ),
                        "upload_rate_ratio": round(
                            last["upload_files_per_s"] / first["upload_files_per_s"], 2
                        ),
                        "server_rss_growth_mb": round(
                            last["server_rss_mb"] - first["server_rss_mb"], 1
                        ),
                    }
                )
            )
    if args.plot and rows:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from _plots import plot_kb_latency

        earlier = [
            row
            for path in args.plot_with
            for line in Path(path).read_text().splitlines()
            if line.startswith("{") and (row := json.loads(line)).get("bench") == "kb_scale"
        ]
        plot_kb_latency(earlier + rows, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
