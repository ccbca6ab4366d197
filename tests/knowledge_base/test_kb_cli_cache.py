"""``sedna serve kb`` in a subprocess, ``sedna kb`` helpers, and the edge cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sedna_core.cli.main import main as sedna_main
from sedna_core.clock import ManualClock
from sedna_core.knowledge_base import (
    SCHEMA_VERSION,
    EdgeKnowledgeCache,
    KnowledgeBaseClient,
    KnowledgeBaseServer,
)


def small_index(ref, entry="t"):
    return {
        "schema": "sedna.lifelong.task_index",
        "schema_version": 1,
        "create_time": time.time(),
        "seen_task": {
            "task_groups": [
                {
                    "entry": entry,
                    "tasks": [{"entry": entry, "task_id": 0, "meta_attr": {"site": entry}}],
                    "model": {k: ref[k] for k in ("name", "sha256", "format", "filename")},
                }
            ]
        },
        "unseen_task": {"task_groups": []},
    }


def test_ll_sedna_serve_kb_in_a_subprocess(tmp_path):
    env = {**os.environ, "SEDNA_LOG_FORMAT": "json", "LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sedna_core.cli.main",
            "serve",
            "kb",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "kb"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # blocks until the server printed its URL (or died)
        assert line.startswith("sedna kb listening on http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[4]
        with KnowledgeBaseClient(url) as client:
            assert client._http.get("/healthz").json()["status"] == "ok"
            ref = client.upload_file(b'{"w": 1}', name="m.json")
            assert client.update_index(small_index(ref)) == 1
        status = subprocess.run(
            [sys.executable, "-m", "sedna_core.cli.main", "kb", "status", "--url", url, "--json"],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["version"] == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        proc.stdout.close()
        proc.stderr.close()
    assert (tmp_path / "kb" / "kb.sqlite3").is_file()


def test_ll_sedna_kb_upgrade_schema_and_validate(tmp_path, build_sedna_v1_db, capsys):
    url = f"sqlite:///{tmp_path / 'old.sqlite3'}"
    build_sedna_v1_db(url)
    assert sedna_main(["kb", "upgrade", "--db-url", url]) == 0
    assert f"1 -> {SCHEMA_VERSION}" in capsys.readouterr().out
    assert sedna_main(["kb", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["schema_version"] == {"const": 1}
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "nope"}')
    assert sedna_main(["kb", "validate", str(bad)]) == 1
    said = capsys.readouterr()
    assert "malformed task index" in said.out + said.err  # the CLI reports errors on stderr


def test_ll_edge_cache_serves_while_kb_is_down_and_refreshes_when_newer(kb_dir, tmp_path):
    server = KnowledgeBaseServer(data_dir=str(kb_dir), port=0)
    server.start_in_background()
    clock = ManualClock()
    client = KnowledgeBaseClient(server.url, retries=0, timeout=2.0)
    cache = EdgeKnowledgeCache(tmp_path / "edge", client, poll_period=30.0, clock=clock)
    try:
        ref1 = client.upload_file(b'"model one"', name="m.json")
        client.update_index(small_index(ref1))
        assert cache.maybe_refresh() is True
        assert cache.version == 1
        model = cache.path(cache.index["seen_task"]["task_groups"][0]["model"])
        assert model.read_bytes() == b'"model one"'
        ref2 = client.upload_file(b'"model two"', name="m.json")
        client.update_index(small_index(ref2))
        assert cache.maybe_refresh() is False  # poll period not over: no request made
        clock.advance(30.0)
        assert cache.maybe_refresh() is True and cache.version == 2
        new_model = cache.path(cache.index["seen_task"]["task_groups"][0]["model"])
        assert new_model.read_bytes() == b'"model two"'
        assert not model.exists()  # files of the old index are dropped
    finally:
        server.stop_background()
    clock.advance(30.0)
    assert cache.maybe_refresh() is False  # KB down: logged, cache kept
    assert cache.last_error is not None and cache.version == 2
    # a new process on the same edge directory starts from the cache alone
    offline = EdgeKnowledgeCache(tmp_path / "edge", client, clock=clock)
    assert offline.version == 2
    assert offline.path(offline.index["seen_task"]["task_groups"][0]["model"]).is_file()
    client.close()


def test_ll_edge_cache_ignores_a_damaged_index_file(tmp_path):
    (tmp_path / "index.json").write_text("{broken")
    cache = EdgeKnowledgeCache(tmp_path)
    assert cache.index is None
    with pytest.raises(Exception, match="not in the edge cache"):
        cache.path({"sha256": "a" * 64, "name": "x"})
    assert Path(tmp_path).is_dir()
