"""The incremental benchmark's scoring and picture (``benchmarks/incremental.py``, issue 17/20).

The benchmark's figures are only as good as its recovery rule: these pin it on hand-made
accuracy traces whose answer is worked out in the comments.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks import incremental as bench

N_WINDOWS = (bench.N - bench.SCORED_FROM) // bench.WINDOW  # 180 windows of 100 from 2,000


def _trace(base: float = 0.9, **dips: float) -> list[float]:
    """``base`` everywhere, with ``dips`` = {"<first window>_<last window>": accuracy}."""
    w = [base] * N_WINDOWS
    for span, value in dips.items():
        lo, hi = (int(v) for v in span.lstrip("w").split("_"))
        w[lo : hi + 1] = [value] * (hi + 1 - lo)
    return w


def test_recovery_counts_from_the_drift_to_the_first_rolling_window_back_at_95pct() -> None:
    # windows 80..84 (samples 10,000-10,500) fall to 0.5; the 500-sample rolling accuracy is
    # back at 0.95 * 0.9 = 0.855 only once all five windows behind it are 0.9 again: the
    # window ending at 11,000, i.e. 1,000 samples after the drift
    out = bench.score(_trace(w80_84=0.5), [10_000])
    assert out["pre_drift_accuracy"] == pytest.approx(0.9)
    assert out["drifts"][0]["recovery_samples"] == 1_000
    assert out["drifts"][0]["lowest_rolling"] == pytest.approx(0.5)


def test_no_dip_is_zero_and_no_return_is_none() -> None:
    assert bench.score(_trace(), [10_000])["drifts"][0]["recovery_samples"] == 0
    never = bench.score(_trace(w80_179=0.5), [10_000])
    assert never["drifts"][0]["recovery_samples"] is None


def test_gradual_drift_transition_is_not_part_of_the_pre_drift_accuracy() -> None:
    # a 2,000-wide drift centred on 10,000 starts at 9,000 (window 70): windows 70..79 at 0.6
    # must not lower the pre-drift accuracy (and with it the recovery target)
    trace = _trace(w70_79=0.6)
    assert bench.score(trace, [10_000], width=2_000)["pre_drift_accuracy"] == pytest.approx(0.9)
    assert bench.score(trace, [10_000], width=1)["pre_drift_accuracy"] < 0.9


def test_recurring_drifts_are_each_scored_until_the_next() -> None:
    # drifts at 7,000 (window 50) and 14,000 (window 120); only the second one dips
    out = bench.score(_trace(w120_124=0.5), [7_000, 14_000])
    assert [d["recovery_samples"] for d in out["drifts"]] == [0, 1_000]


def test_interval_is_valid_json_when_draws_never_recover() -> None:
    res = bench.interval([100.0, np.inf, np.inf])
    json.dumps(res, allow_nan=False)  # no Infinity/NaN in the JSON lines
    assert res["never"] == 2 and res["median"] is None and res["max"] == 100.0
    full = bench.interval([100.0, 200.0, 300.0, 400.0, 500.0])
    assert full["median"] == 300.0 and full["never"] == 0
    lo, hi = full["mean_ci95"]
    assert lo < 300.0 < hi


def test_no_scoring_draw_is_a_tuning_draw() -> None:
    assert not set(bench.SCORING_DRAWS) & set(bench.TUNING_DRAWS)
    assert (1, 2, 42) not in bench.SCORING_DRAWS  # the stream earlier settings were picked on
    assert len(bench.SCORING_DRAWS) >= 5


def test_stream_matches_rivers_where_river_can_iterate() -> None:
    pytest.importorskip("river")
    assert bench._check_fidelity()


def test_stream_picture_is_written(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from benchmarks._plots import plot_stream_accuracy

    ends, ours = bench.rolling_accuracy(_trace(w80_84=0.5))
    panel = {
        "title": "gradual",
        "positions": ends.tolist(),
        "curves": {"ours": ours.tolist(), "never update": _trace(w80_179=0.5)[4:]},
        "drifts": [10_000],
        "drift_width": 2_000,
        "deploys": [10_600, 11_200],
        "false_deploys": [11_200],
    }
    out = plot_stream_accuracy([panel, {**panel, "drift_width": 1}], tmp_path / "s.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
