"""FedAvg's fused finish (sum, divide and cast per cache-sized sub-block) gives bit for bit what
the general path (model-sized float64 accumulators, then ``server_update``) gives."""

from __future__ import annotations

import numpy as np
import pytest
from sedna_plugin_fedavg import FedAvg, FedAvgM

from sedna_core.algorithms.aggregation import FOLD_ELEMENTS, ArrayUpdate


def _round(agg: FedAvg | FedAvgM, global_w: list, updates: list, samples: list, chunked: int):
    agg.begin_round(global_w)
    for upd, m in zip(updates[:chunked], samples[:chunked], strict=True):
        agg.accumulate(upd, m)  # folded chunk by chunk into the model-sized accumulators
    for upd, m in zip(updates[chunked:], samples[chunked:], strict=True):
        agg.add_update(ArrayUpdate(upd, m))  # folded block-major at finish
    return agg.finish()


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "int32", "complex64"])
@pytest.mark.parametrize("chunked", [0, 2])
def test_fused_finish_is_bit_identical_to_the_general_path(dtype: str, chunked: int) -> None:
    rng = np.random.default_rng(7)
    shapes = [(2 * FOLD_ELEMENTS + 3,), (3, 5), ()]
    scale = 6e4 if dtype == "float16" else 1e3  # float16: near its maximum (65504)
    updates = [
        [np.clip(rng.standard_normal(s) * scale, -65504, 65504).astype(dtype) for s in shapes]
        for _ in range(5)
    ]
    samples = [int(x) for x in rng.integers(1, 1 << 40, size=5)]
    global_w = [np.zeros(s, dtype) for s in shapes]
    fused = _round(FedAvg(), global_w, updates, samples, chunked)
    # lr 1 without momentum overrides server_update with the identity: the general path
    general = _round(FedAvgM(1.0, 0.0), global_w, updates, samples, chunked)
    for a, b in zip(fused, general, strict=True):
        assert a.dtype == b.dtype == np.dtype(dtype) and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
        if a.dtype.kind in "fc":
            assert np.isfinite(a).all()
