"""Stopping and starting cleanly: SIGTERM while waiting, leftovers of killed servers swept at
start-up, a disk-backed spool by default, impossible settings refused by the CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from structlog.testing import capture_logs

from sedna_core.jobs.federated import AggregationServer
from sedna_core.jobs.federated._spool import (
    RAM_FILESYSTEMS,
    default_spool_parent,
    filesystem_of,
)

SERVE = [sys.executable, "-m", "sedna_core.cli.main", "serve", "aggregation", "--port", "0"]
API = """
import sys
from sedna_core.jobs.federated import AggregationServer
AggregationServer("FedAvg", participants_count=2, port=0, spool_dir=sys.argv[1]).start()
"""
INIT = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _lines(text: str) -> list[dict[str, object]]:
    out = []
    for line in text.splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


@pytest.mark.parametrize("how", ["cli", "api"])
def test_sigterm_while_waiting_removes_the_spool_and_says_so(how: str, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    env = {
        **os.environ,
        "SEDNA_LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",  # the test reads info lines, whatever the caller's level
        "AGG_SPOOL_DIR": str(spool),
    }
    if how == "cli":
        cmd = [*SERVE, "--participants", "2"]
    else:
        cmd = [sys.executable, "-c", API, str(spool)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        seen = []
        while True:  # until the server says it waits (then it is idle, with a spool)
            line = proc.stderr.readline()
            assert line, "".join(seen)
            seen.append(line)
            if "waiting for clients: 0 of 2 joined" in line:
                break
        assert len(list(spool.glob("sedna-fl-spool-*"))) == 1
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    events = _lines("".join(seen) + err)
    stopped = [
        e for e in events if str(e.get("event", "")).startswith("aggregation server stopped")
    ]
    assert stopped and stopped[0]["spool_removed"], err
    assert "before the job ended" in str(stopped[0]["event"])
    assert list(spool.iterdir()) == []  # no empty spool directory left behind
    # the CLI exits "interrupted"; start() returns its (failed) result to the program
    assert proc.returncode == (130 if how == "cli" else 0)


async def test_start_up_sweeps_what_killed_servers_left(tmp_path: Path) -> None:
    spool, ckpt = tmp_path / "spool", tmp_path / "ckpt"
    dead = _dead_pid()
    left = spool / f"sedna-fl-spool-{dead}-abc"
    left.mkdir(parents=True)
    (left / "00000001.bin").write_bytes(b"x" * 100)
    (spool / "sedna-fl-spool-oldstyle").mkdir()  # empty, no pid: swept
    alive = spool / f"sedna-fl-spool-{os.getppid()}-live"  # a live process's: kept
    alive.mkdir()
    ckpt.mkdir()
    temp = ckpt / f".ckpt-{dead}-x.bin"  # a checkpoint write killed mid-way (FedAdam case)
    temp.write_bytes(b"partial")
    server = AggregationServer(
        "FedAdam",
        exit_round=1,
        participants_count=1,
        port=0,
        initial_weights=INIT,
        spool_dir=str(spool),
        checkpoint_dir=str(ckpt),
    )
    with capture_logs() as logs:
        await server.astart()
        try:
            await server.wait_until(lambda s: s.phase == "waiting")
        finally:
            await server.astop()
    assert not left.exists() and not (spool / "sedna-fl-spool-oldstyle").exists()
    assert alive.exists() and not temp.exists()
    events = {e["event"]: e for e in logs}
    assert events["removed spool directories left by stopped servers"]["count"] == 2
    assert events["removed what an interrupted checkpoint left behind"]["checkpoint_temporary"] == 1
    assert [p.name for p in spool.iterdir()] == [alive.name]  # ours is gone too


async def test_default_spool_is_disk_backed_and_logged() -> None:
    parent = default_spool_parent()
    assert filesystem_of(parent) not in RAM_FILESYSTEMS
    server = AggregationServer("FedAvg", port=0, initial_weights=INIT)
    with capture_logs() as logs:
        await server.astart()
        try:
            where = server.status()["spool"]
        finally:
            await server.astop()
    assert Path(where["path"]).parent == parent
    line = next(e for e in logs if e["event"] == "update spool")
    assert line["spool"] == where["path"] and line["filesystem"] == where["filesystem"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--exit-round", "-3"], "exit_round"),
        (["--quorum", "5", "--participants", "2"], "quorum"),
        (["--fraction", "0"], "fraction"),
        (["--deadline", "-1"], "round_deadline"),
        (["--max-retries", "-1"], "max_retries"),
    ],
)
def test_cli_refuses_impossible_settings_in_one_line(args: list[str], named: str) -> None:
    proc = subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sedna serve")]
    assert len(errors) == 1 and named in errors[0] and "expected" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr
