"""``sedna serve aggregation`` in a subprocess completes a job with clients."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

#: ``sedna serve aggregation`` on an ephemeral port, run as a subprocess
SERVE = [sys.executable, "-m", "sedna_core.cli.main", "serve", "aggregation", "--port", "0"]


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=60)


async def test_serve_aggregation_subprocess(
    client_factory: Any, fedavg_expected: Any, bounded: Any, tmp_path: Path
) -> None:
    init = tmp_path / "init.npz"
    np.savez(init, np.zeros((4, 3), np.float32), np.zeros(3, np.float32))
    env = {**os.environ, "PARTICIPANTS_COUNT": "2", "SEDNA_LOG_FORMAT": "json"}
    proc = subprocess.Popen(
        [
            *SERVE,
            "--aggregation",
            "FedAvg",
            "--exit-round",
            "2",
            "--json",
            "--initial-weights",
            str(init),
            "--checkpoint-dir",
            str(tmp_path / "ckpt"),
            "--linger",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = await bounded(asyncio.to_thread(proc.stdout.readline))
        assert "listening on ws://127.0.0.1:" in line, line + proc.stderr.read()
        url = line.strip().rsplit(" ", 1)[-1]
        clients = [client_factory(url, k) for k in (1, 3)]
        await bounded(asyncio.gather(*(c.atrain([0] * 5) for c in clients)))
        out, err = await bounded(asyncio.to_thread(proc.communicate))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    lines = out.strip().splitlines()
    rounds = [json.loads(x) for x in lines if x.startswith("{")]
    assert [r["round"] for r in rounds] == [1, 2]
    assert rounds[0]["clients"] == ["c1", "c3"]
    assert lines[-1] == "job completed: 2 round(s)"
    want = fedavg_expected(2, [(1, 5), (3, 5)])
    np.testing.assert_allclose(clients[0].estimator.get_weights()[0], want, rtol=1e-6)
    assert (tmp_path / "ckpt").exists()


def test_serve_aggregation_fails_clearly_without_quorum(tmp_path: Path) -> None:
    proc = _serve("--deadline", "0.2", "--max-retries", "1", "--participants", "2", "--linger", "0")
    assert proc.returncode == 1
    assert "job failed: round 1 missed its quorum 2 time(s)" in proc.stderr


def test_serve_aggregation_rejects_bad_settings() -> None:
    proc = _serve("--aggregation", "NoSuchThing")
    assert proc.returncode == 2
    assert "NoSuchThing" in proc.stderr
