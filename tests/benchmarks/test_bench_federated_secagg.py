"""The SecAgg+ benchmark's instruments (``benchmarks/federated_secagg.py``, issue 22).

Its byte figures come from the counting proxy and its round windows, and its Flower peer from
a bundle it writes: these check that the proxy counts exactly what crosses it, that bytes are
attributed to the round whose window holds them, and that both systems accept the one set of
SecAgg+ parameters the benchmark gives them.
"""

from __future__ import annotations

import socket
import threading
import tomllib
from pathlib import Path

import pytest

from benchmarks import federated_secagg as bench


def _echo_server() -> tuple[socket.socket, threading.Thread]:
    """A one-connection echo server on 127.0.0.1 (returns when its peer closes)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(1 << 16):
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_proxy_counts_every_byte_each_way() -> None:
    listener, thread = _echo_server()
    proxy = bench.CountingProxy(listener.getsockname()[1]).start()
    payload = bytes(range(256)) * 4096  # 1 MiB: many reads of 64 KiB
    try:
        with socket.create_connection(("127.0.0.1", proxy.port)) as conn:
            conn.sendall(payload)
            got = bytearray()
            while len(got) < len(payload):
                got += conn.recv(1 << 16)
        thread.join(30)
        assert bytes(got) == payload
        # each chunk is recorded before it is forwarded: once the echo is back, all are in
        assert proxy.totals() == (len(payload), len(payload))
        assert proxy.connections == 1
    finally:
        proxy.stop()
        listener.close()


def test_bytes_belong_to_the_round_whose_window_holds_them() -> None:
    proxy = bench.CountingProxy(1)  # never started: events are filled in by hand
    proxy.events = [(1.0, 10, 0), (1.5, 20, 1), (2.5, 300, 0), (3.0, 7, 1), (9.0, 1000, 1)]
    assert proxy.between(0.5, 2.0) == (10, 20)
    assert proxy.between(2.0, 3.0) == (300, 7)
    stats = bench._windows_stats([1.0, 1.0, 0.5], [2.0, 3.0, 4.5], proxy, 2, 3)
    # round 2 holds what came after round 1's end (2.0) up to its own (3.0): 307 bytes;
    # round 3 (3.0, 4.5] nothing (the event at 9.0 is after the last round)
    assert stats["rounds"] == [2, 3]
    assert stats["median_round_s"] == pytest.approx(0.75)
    assert stats["round_s_range"] == [0.5, 1.0]
    assert stats["bytes_per_round_median"] == 153  # median of 307 and 0, as an int
    assert stats["upload_bytes_per_round_median"] == 150
    # round 1 starts with the job: everything up to its end
    assert bench._windows_stats([1.0], [2.0], proxy, 1, 1)["bytes_per_round_median"] == 30


def test_flower_gets_the_same_parameters_and_a_valid_bundle(tmp_path: Path) -> None:
    pytest.importorskip("flwr")
    from flwr.common.config import validate_config
    from flwr.server.workflow import SecAggPlusWorkflow

    (tmp_path / "pyproject.toml").write_text(
        bench.FAB_PYPROJECT.format(
            params=1000, rounds=2, clients=10, out=tmp_path / "out.json", **bench.SECAGG
        )
    )
    (tmp_path / "secagg_bench_app.py").write_text(bench.FAB_MODULE)
    config = tomllib.loads((tmp_path / "pyproject.toml").read_text())
    ok, errors, _ = validate_config(config, check_module=True, project_dir=tmp_path)
    assert ok, errors
    run_config = config["tool"]["flwr"]["app"]["config"]
    # the bundle's run config spells the benchmark's parameters with Flower's dashes
    for name, value in bench.SECAGG.items():
        assert run_config[name.replace("_", "-")] == value
    workflow = SecAggPlusWorkflow(**bench.SECAGG)
    assert (workflow.num_shares, workflow.reconstruction_threshold) == (5, 3)


def test_ours_accepts_the_same_parameters() -> None:
    pytest.importorskip("sedna_plugin_transforms")
    from sedna_core.jobs.federated import AggregationServer

    server = AggregationServer(
        "FedAvg",
        participants_count=10,
        port=0,
        transforms=[{"method": "SecAggPlus", "param": dict(bench.SECAGG)}],
    )
    assert server.transforms.secure is not None


@pytest.mark.parametrize("system", ["sedna-core", "flower"])
def test_report_splits_the_job_into_its_two_phases(system: str) -> None:
    # the documents both servers write (ours adds its spool and stats; the rows take both)
    proxy = bench.CountingProxy(1)
    proxy.events = [(0.5, 5, 0), (1.5, 10, 0), (2.5, 20, 1), (3.5, 40, 0), (4.5, 80, 1)]
    doc = {
        "round_times": [1.0, 0.9, 0.8, 0.7, 0.6],
        "ends": [1.0, 2.0, 3.0, 4.0, 5.0],
        "clients_per_round": [10] * 5,
        "dropouts_done": 4,
        "max_abs_error_vs_fedavg": 1e-5,
    }
    run = {"system": system, "doc": doc, "proxy": proxy, "memory": {"server_peak_mb": 1.0}}
    clean, dropped = bench.report(run, 1000, 10, 2, 2)
    assert (clean["rounds"], dropped["rounds"]) == ([2, 3], [4, 5])
    assert (clean["dropouts"], dropped["dropouts"]) == (0, bench.DROPPERS)
    assert clean["median_round_s"] == pytest.approx(0.85)
    assert dropped["round_s_range"] == [0.6, 0.7]
    assert clean["bytes_per_round_median"] == 15  # rounds 2 and 3: 10 and 20 bytes
    assert dropped["bytes_per_round_median"] == 60  # rounds 4 and 5: 40 and 80 bytes
    assert clean["job_bytes_up"] + clean["job_bytes_down"] == 155
    assert clean["dropouts_done_in_job"] == 4
