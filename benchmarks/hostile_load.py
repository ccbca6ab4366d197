"""Hostile load on the inference service: `/healthz` latency while 2 maximum-size authenticated
requests are in flight, and the server's peak memory.

For each case a fresh ``BigModelService`` (a trivial model: a row sum) runs in its own process
with a token; the benchmark sends 2 concurrent authenticated predicts of the largest body the
case allows while a third connection polls ``/healthz`` back to back, and reads the server's
peak RSS (``VmHWM``) from ``/proc``. Cases:

- ``binary``: tensor bodies at ``max_request_size`` (default 64 MiB);
- ``wire-header``: tensor messages whose JSON header is the largest the wire allows;
- ``json``: JSON bodies at ``max_json_size`` (default 4 MiB);
- peer ``json-uncapped``: the same JSON predicts with the JSON cap lifted to the body limit,
  as before the cap existed (``--peer-mib`` MiB per request), in the same run.

Prints one JSON line per run and one summary line per case (median and range over runs of the
`/healthz` p99 in ms, peak RSS growth over idle in MiB and as a multiple of the 2 in-flight
body limits, 413/400 counts), then the goal check: p99 <= 50 ms and RSS growth <= 3x the body
limits for the capped cases.

    .venv/bin/python benchmarks/hostile_load.py [--repeat 3] [--peer-mib 60]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np

TOKEN = "bench-token"
GOAL_P99_MS = 50.0
GOAL_RSS_RATIO = 3.0

_SERVER = r"""
import sys, threading
import numpy as np
from sedna_core.config.joint_inference import BigModelServiceConfig
from sedna_core.jobs.joint_inference import BigModelService
from sedna_core.log import configure_logging

configure_logging(level="WARNING")

class RowSum:
    def predict(self, x):
        return np.asarray(x, dtype=np.float32).reshape(len(x), -1).sum(axis=1)

config = BigModelServiceConfig.from_env(
    host="127.0.0.1", port=0, token=sys.argv[1], max_json_size=int(sys.argv[2])
)
svc = BigModelService(RowSum(), job_name="bench", service_config=config)
svc.start(block=False)
print(svc.url.rsplit(":", 1)[1], flush=True)
threading.Event().wait()
"""


def _rss_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def _bodies(case: str, limit: int, json_limit: int) -> tuple[bytes, str]:
    from sedna_core import wire

    if case == "binary":
        rows = (limit - 4096) // (1024 * 4)
        return wire.encode({"data": np.ones((rows, 1024), np.float32)}), wire.CONTENT_TYPE
    if case == "wire-header":
        # many tiny tensors: the JSON header grows to the largest the wire accepts, data stays small
        def fits(n: int) -> bytes | None:
            tensors = {f"t{i:07d}": np.zeros(1, np.float32) for i in range(n)}
            tensors["data"] = np.ones((1, 4), np.float32)
            try:
                return wire.encode(tensors)
            except Exception:
                return None

        lo, hi = 1, 2
        while fits(hi) is not None:
            lo, hi = hi, hi * 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if fits(mid) is not None else (lo, mid)
        return fits(lo), wire.CONTENT_TYPE  # type: ignore[return-value]
    # JSON: rows of 64 floats, as many as fit the limit
    row = json.dumps([0.5] * 64)
    n = max(1, (json_limit - 32) // (len(row) + 2))
    body = ('{"data": [' + ",".join([row] * n) + "]}").encode()
    while len(body) > json_limit:
        n -= 1
        body = ('{"data": [' + ",".join([row] * n) + "]}").encode()
    return body, "application/json"


def _predict(port: int, body: bytes, content_type: str, out: list[int]) -> None:
    # a raw socket: http.client would first concatenate headers and body (a 64 MiB copy that
    # holds this process's GIL and would stall our own /healthz poller, not the server)
    head = (
        f"POST /bench/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        sock.sendall(head)
        sock.sendall(memoryview(body))
        answer = b""
        while chunk := sock.recv(1 << 16):
            answer += chunk
    out.append(int(answer.split(b" ", 2)[1]))


def _poll(health: http.client.HTTPConnection, until: Any) -> list[float]:
    latencies = []
    while until():
        start = time.perf_counter()
        health.request("GET", "/healthz")
        health.getresponse().read()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


def _run(case: str, limit: int, json_limit: int, server_json_limit: int) -> dict[str, Any]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, TOKEN, str(server_json_limit)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "SEDNA_MAX_REQUEST_SIZE": str(limit)},
    )
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        body, content_type = _bodies(case, limit, json_limit)
        health = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        for _ in range(50):  # warm up: the first requests import and allocate
            health.request("GET", "/healthz")
            health.getresponse().read()
        warm: list[int] = []
        _predict(port, body[: min(len(body), 64)], content_type, warm)  # small: a 400
        idle_kib = _rss_kib(proc.pid, "VmRSS")
        statuses: list[int] = []
        senders = [
            threading.Thread(target=_predict, args=(port, body, content_type, statuses))
            for _ in range(2)
        ]
        for t in senders:
            t.start()
        latencies = _poll(health, lambda: any(t.is_alive() for t in senders))
        for t in senders:
            t.join()
        # the peer in the same run: the same poller with nothing in flight, as many samples
        remaining = [max(len(latencies), 20)]

        def more() -> bool:
            remaining[0] -= 1
            return remaining[0] >= 0

        idle = _poll(health, more)
        peak_kib = _rss_kib(proc.pid, "VmHWM")
        health.close()
    finally:
        proc.kill()
        proc.wait()
    growth_mib = max(0, peak_kib - idle_kib) / 1024
    in_flight_limit = limit if content_type != "application/json" else server_json_limit
    return {
        "case": case,
        "body_bytes": len(body),
        "statuses": sorted(statuses),
        "healthz_samples": len(latencies),
        "healthz_p50_ms": float(np.percentile(latencies, 50)),
        "healthz_p99_ms": float(np.percentile(latencies, 99)),
        "healthz_max_ms": float(max(latencies)),
        "idle_healthz_p99_ms": float(np.percentile(idle, 99)),
        "peak_rss_mib": peak_kib / 1024,
        "rss_growth_mib": growth_mib,
        "rss_growth_per_body_limits": growth_mib * (1 << 20) / (2 * in_flight_limit),
        "rss_growth_per_request_limit": growth_mib * (1 << 20) / (2 * limit),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-mib", type=int, default=60, help="JSON size of the uncapped peer")
    args = parser.parse_args()

    from sedna_core.config import ServiceConfig

    defaults = ServiceConfig.from_env({})
    limit, json_limit = defaults.max_request_size, defaults.max_json_size
    peer_bytes = args.peer_mib << 20
    cases = [
        ("binary", limit, json_limit, json_limit),
        ("wire-header", limit, json_limit, json_limit),
        ("json", limit, json_limit, json_limit),
        ("json-uncapped", max(limit, peer_bytes + 4096), peer_bytes, max(limit, peer_bytes)),
    ]
    runs: dict[str, list[dict[str, Any]]] = {c[0]: [] for c in cases}
    for _ in range(args.repeat):  # interleaved: machine load affects every case alike
        for name, case_limit, case_json, server_json in cases:
            kind = "json" if name.startswith("json") else name
            result = _run(kind, case_limit, case_json, server_json)
            result["case"] = name
            runs[name].append(result)
            print(json.dumps(result), flush=True)
    summary = {}
    for name, results in runs.items():
        p99 = [r["healthz_p99_ms"] for r in results]
        ratio = [r["rss_growth_per_body_limits"] for r in results]
        summary[name] = {
            "case": name,
            "summary": True,
            "runs": len(results),
            "body_mib": round(results[0]["body_bytes"] / (1 << 20), 2),
            "healthz_p99_ms_median": round(statistics.median(p99), 1),
            "healthz_p99_ms_range": [round(min(p99), 1), round(max(p99), 1)],
            "healthz_max_ms_max": round(max(r["healthz_max_ms"] for r in results), 1),
            "idle_healthz_p99_ms_median": round(
                statistics.median(r["idle_healthz_p99_ms"] for r in results), 1
            ),
            "rss_growth_mib_median": round(
                statistics.median(r["rss_growth_mib"] for r in results), 1
            ),
            "rss_growth_per_body_limits_median": round(statistics.median(ratio), 2),
            "rss_growth_per_request_limit_median": round(
                statistics.median(r["rss_growth_per_request_limit"] for r in results), 2
            ),
            "statuses": sorted({s for r in results for s in r["statuses"]}),
        }
        print(json.dumps(summary[name]), flush=True)
    capped = ("binary", "wire-header", "json")
    goal = {
        "goal": f"healthz p99 <= {GOAL_P99_MS} ms and RSS growth <= {GOAL_RSS_RATIO}x limits",
        "met": {
            c: summary[c]["healthz_p99_ms_median"] <= GOAL_P99_MS
            and summary[c]["rss_growth_per_body_limits_median"] <= GOAL_RSS_RATIO
            for c in capped
        },
        "p99_ratio_uncapped_json_to_capped_json": round(
            summary["json-uncapped"]["healthz_p99_ms_median"]
            / max(summary["json"]["healthz_p99_ms_median"], 1e-9),
            1,
        ),
    }
    print(json.dumps(goal), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
