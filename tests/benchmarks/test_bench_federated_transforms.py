"""The compression and DP benchmarks on tiny settings (``benchmarks/federated_transforms.py``,
``benchmarks/federated_dp.py``): the rows carry what docs/benchmarks.md quotes, packed updates
are one frame each, and ours equals Flower's DP strategy when both draw the same noise."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sedna_plugin_transforms")


def _rows(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]


def test_bytes_benchmark_counts_every_part_of_an_update(capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import federated_transforms as bench

    assert bench.main(["--clients", "3", "--rounds", "2"]) == 0
    rows = {r["chain"]: r for r in _rows(capsys)}
    for r in rows.values():
        parts = r["update_frame_bytes"] + r["control_bytes"] + r["ws_framing_bytes"]
        assert r["wire_bytes"] == parts
        assert r["frame_header_bytes"] == r["update_frame_bytes"] - r["payload_bytes"]
    assert rows["none"]["frames_per_update"] == 2  # the demo model: weights and bias
    assert rows["int8"]["frames_per_update"] == 1  # packed into one byte tensor
    assert rows["int8-unpacked"]["frames_per_update"] == 4  # values and scales per tensor
    assert rows["int8"]["wire_bytes"] < rows["int8-unpacked"]["wire_bytes"]
    # the same tensors either way (clients round with fresh entropy: values differ, not sizes)
    assert rows["int8"]["payload_bytes"] - rows["int8-unpacked"]["payload_bytes"] < 8 * 4 * 3 * 2


def test_dp_benchmark_equals_flower_on_the_same_noise(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("flwr")
    from benchmarks import federated_dp as bench

    plot = tmp_path / "dp.png"
    args = ["--rounds", "3", "--seeds", "2", "--z", "0,1", "--clients", "10,20"]
    assert bench.main([*args, "--plot", str(plot)]) == 0
    rows = [r for r in _rows(capsys) if r.get("bench") == "federated_dp"]
    assert len(rows) == 4 and plot.stat().st_size > 0
    for r in rows:
        assert r["ours_same_noise_accuracy"] == r["flower_accuracy"]
        assert r["ours_same_noise_minus_flower_points"] == 0.0
    noisy = [r for r in rows if r["noise_multiplier"] == 1.0]
    assert [r["sampling_rate"] for r in noisy] == [1.0, 0.5]
    from sedna_plugin_transforms import epsilon_of

    assert noisy[1]["epsilon"] == pytest.approx(epsilon_of(1.0, 0.5, 3, 1e-5), abs=1e-3)
    assert all(r["epsilon"] == "inf" for r in rows if r["noise_multiplier"] == 0.0)
