"""The federated scaling benchmark's harness and arithmetic (``benchmarks/federated_scale.py``).

The fits and slopes are checked on hand-made rows whose answers are worked out in the
comments; one small real run checks that clients sharing processes complete a job and that the
rows carry what the docs quote.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import federated_scale as bench
from benchmarks.federated_round_time import client_groups, run_system, transport_floor


def test_clients_are_spread_evenly_over_the_processes() -> None:
    assert client_groups(256, 4) == [(0, 64), (64, 64), (128, 64), (192, 64)]
    assert client_groups(6, 4) == [(0, 2), (2, 2), (4, 1), (5, 1)]
    assert client_groups(2, 4) == [(0, 1), (1, 1)]  # never an empty process


def test_line_fit_recovers_a_known_slope() -> None:
    # memory = 90 MB + 0.5 MB per client, exactly
    a, b = bench.fit_line([4, 16, 64, 256], [92.0, 98.0, 122.0, 218.0])
    assert a == pytest.approx(90.0)
    assert b == pytest.approx(0.5)


def _row(system: str, x: int, t: float) -> dict[str, object]:
    return {"system": system, "payload_bytes_per_round": x, "median_round_s": t}


def test_loglog_slope_is_one_for_linear_growth_and_uses_the_lower_floor() -> None:
    # 4x the bytes, 4x the time: slope 1; then 4x the bytes, 2x the time: slope 0.5
    rows = [_row("s", 1, 1.0), _row("s", 4, 4.0), _row("s", 16, 8.0)]
    assert bench.loglog_slopes(rows, "payload_bytes_per_round") == [1.0, 0.5]
    # the floor is measured twice per point: the lower one counts (1.0 and 2.0, not 3.0)
    floor = [_row("f", 1, 1.0), _row("f", 1, 3.0), _row("f", 2, 2.0)]
    assert bench.loglog_slopes(floor, "payload_bytes_per_round") == [1.0]


def test_summary_fits_memory_per_client(capsys: pytest.CaptureFixture[str]) -> None:
    rows: list[dict[str, object]] = []
    for n in (4, 16, 64):
        payload = 2 * n * 400_000
        base = {"sweep": "clients", "clients": n, "params": 100_000}
        rows.append(
            {
                **base,
                **_row("sedna-core", payload, 0.01 * n),
                "server_peak_rss_mb": 90 + 0.25 * n,  # 256 KB a client
                "server_peak_rss_plus_spool_mb": 90 + 0.25 * n + 0.4 * n,
                "wire_bytes_per_round": int(payload * 1.01),
            }
        )
        rows.append({**base, **_row("flower", payload, 0.02 * n), "server_peak_rss_mb": 100 + n})
        # the floor before and after: ours is divided by the lower one (0.005 n)
        rows.append({**base, **_row("transport floor", payload, 0.005 * n)})
        rows.append({**base, **_row("transport floor", payload, 0.008 * n)})
    out = bench.summarise("clients", rows)
    assert out["sedna_core_peak_rss_fit"] == {"idle_mb": 90.0, "kb_per_client": 256.0}
    assert out["sedna_core_rss_plus_spool_fit"]["kb_per_client"] == pytest.approx(665.6)
    assert out["flower_peak_rss_fit"] == {"idle_mb": 100.0, "kb_per_client": 1024.0}
    assert out["sedna_core_loglog_slope_vs_payload_bytes"] == [1.0, 1.0]
    assert out["sedna_core_wire_over_payload"] == {"4": 1.01, "16": 1.01, "64": 1.01}
    assert out["ours_over_floor"] == {"4": 2.0, "16": 2.0, "64": 2.0}
    assert out["ours_over_flower"] == {"4": 0.5, "16": 0.5, "64": 0.5}
    assert '"summary": "clients"' in capsys.readouterr().out  # printed as a JSON line


def test_plots_are_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = []
    for system in ("sedna-core", "flower", "transport floor"):
        for sweep, clients, params in (
            ("clients", 4, 100_000),
            ("clients", 16, 100_000),
            ("params", 4, 1_000_000),
        ):
            rows.append(
                {
                    "system": system,
                    "sweep": sweep,
                    "clients": clients,
                    "params": params,
                    "median_round_s": 0.1,
                    "round_s_min": 0.05,
                    "round_s_max": 0.2,
                }
            )
    for path in bench.plot(rows, tmp_path):
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_clients_sharing_processes_finish_a_real_job() -> None:
    # 3 clients as asyncio tasks in 2 processes, a 1,000-parameter model, 2 rounds
    row = run_system("sedna-core", 1_000, 3, 2, False, timeout=240, procs=2)
    assert len(row["round_times_s"]) == 2
    assert row["server_spool_peak_mb"] >= 0
    assert "server_cpu_s_per_round" not in row or row["server_cpu_s_per_round"] >= 0
    floor = transport_floor(1_000, 3, 3, procs=2)
    assert floor["bytes_per_round"] == 2 * 3 * 1_000 * 4
