"""With the noise switched off, our central-DP aggregate equals Flower's corresponding strategy
on the same updates (Flower's four variants; client-side clipping done as Flower's mods do)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

from sedna_core.algorithms.aggregation import ArrayUpdate
from sedna_core.jobs.federated import AggregationServer
from sedna_core.jobs.federated._transforms import TransformChain


@pytest.fixture(scope="module")
def flwr(tmp_path_factory: pytest.TempPathFactory) -> Any:
    os.environ["FLWR_TELEMETRY_ENABLED"] = "0"
    os.environ["FLWR_DISABLE_UPDATE_CHECK"] = "1"
    os.environ["FLWR_HOME"] = str(tmp_path_factory.mktemp("flwr-home"))
    return pytest.importorskip("flwr")


def _round(seed: int) -> tuple[list[np.ndarray], list[tuple[list[np.ndarray], int]]]:
    rng = np.random.default_rng(seed)
    base = [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
    clients = []
    for k, scale in enumerate([0.05, 0.5, 2.0, 0.2]):  # some within the bound, some not
        w = [(b + scale * rng.normal(size=b.shape)).astype(np.float32) for b in base]
        clients.append((w, 10 * (k + 1)))
    return base, clients


def _ours(spec: dict[str, Any], base: list, clients: list) -> tuple[list[np.ndarray], Any]:
    server = AggregationServer("FedAvg", port=0, initial_weights=base, transforms=[spec])
    client_chain = TransformChain.from_welcome(server.transforms.announce())
    sources, metrics = [], []
    for weights, n in clients:
        wire, numbers = client_chain.encode_update(
            weights, base, 1, server.transforms.round_config()
        )
        delta = server.transforms.decode(wire, _ctx(base))
        sources.append(ArrayUpdate([b + d for b, d in zip(base, delta, strict=True)], n))
        metrics.append(numbers)
    return server._aggregate(sources, 1, metrics), server.transforms.transforms[0]


def _ctx(base: list) -> Any:
    from sedna_core.algorithms import TransformContext
    from sedna_core.algorithms.aggregation import specs_of

    return TransformContext(1, specs_of(base))


def _flower(flwr: Any, strategy: Any, base: list, clients: list, mod: Any = None) -> list:
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays

    results = []
    for weights, n in clients:
        weights = [w.copy() for w in weights]
        metrics: dict[str, Any] = {}
        if mod is not None:
            metrics = mod(weights, base)
        res = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(weights), n, metrics)
        results.append((None, res))
    strategy.current_round_params = [b.copy() for b in base]
    params, _ = strategy.aggregate_fit(1, results, [])
    return parameters_to_ndarrays(params)


def _fedavg(flwr: Any) -> Any:
    from flwr.server.strategy import FedAvg

    return FedAvg()


@pytest.mark.parametrize("clip", [0.1, 0.8, 100.0])
def test_server_side_fixed_clipping_equals_flower(flwr: Any, clip: float) -> None:
    from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping as Theirs

    base, clients = _round(0)
    spec = {
        "method": "DifferentialPrivacyServerSideFixedClipping",
        "param": {"noise_multiplier": 0.0, "clipping_norm": clip},
    }
    ours, _ = _ours(spec, base, clients)
    theirs = _flower(flwr, Theirs(_fedavg(flwr), 0.0, clip, len(clients)), base, clients)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("clip", [0.1, 0.8])
def test_client_side_fixed_clipping_equals_flower(flwr: Any, clip: float) -> None:
    from flwr.server.strategy import DifferentialPrivacyClientSideFixedClipping as Theirs
    from flwr.supercore.differential_privacy import compute_clip_model_update

    def mod(weights: list, base: list) -> dict[str, Any]:  # what fixedclipping_mod does
        compute_clip_model_update(weights, base, clip)
        return {}

    base, clients = _round(1)
    spec = {
        "method": "DifferentialPrivacyClientSideFixedClipping",
        "param": {"noise_multiplier": 0.0, "clipping_norm": clip},
    }
    ours, _ = _ours(spec, base, clients)
    theirs = _flower(flwr, Theirs(_fedavg(flwr), 0.0, clip, len(clients)), base, clients, mod)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_server_side_adaptive_clipping_equals_flower(flwr: Any) -> None:
    from flwr.server.strategy import DifferentialPrivacyServerSideAdaptiveClipping as Theirs

    base, clients = _round(2)
    spec = {
        "method": "DifferentialPrivacyServerSideAdaptiveClipping",
        "param": {"noise_multiplier": 0.0, "initial_clipping_norm": 0.5},
    }
    ours, transform = _ours(spec, base, clients)
    strategy = Theirs(_fedavg(flwr), 0.0, len(clients), initial_clipping_norm=0.5)
    theirs = _flower(flwr, strategy, base, clients)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # The next norm differs on purpose: Andrew et al. count the updates that were *not*
    # clipped in C *= exp(-lr * (share - quantile)); Flower 1.x counts the clipped ones, so its
    # norm moves away from the quantile. Here 1 of 4 was within 0.5: ours grows towards the
    # median norm, Flower's shrinks.
    assert transform.clipping_norm == pytest.approx(0.5 * np.exp(-0.2 * (1 / 4 - 0.5)))
    assert strategy.clipping_norm == pytest.approx(0.5 * np.exp(-0.2 * (3 / 4 - 0.5)))


def test_client_side_adaptive_clipping_equals_flower(flwr: Any) -> None:
    from flwr.server.strategy import DifferentialPrivacyClientSideAdaptiveClipping as Theirs
    from flwr.supercore.differential_privacy import compute_adaptive_clip_model_update

    def mod(weights: list, base: list) -> dict[str, Any]:  # what adaptiveclipping_mod does
        return {"norm_bit": compute_adaptive_clip_model_update(weights, base, 0.5)}

    base, clients = _round(3)
    spec = {
        "method": "DifferentialPrivacyClientSideAdaptiveClipping",
        "param": {"noise_multiplier": 0.0, "initial_clipping_norm": 0.5},
    }
    ours, _ = _ours(spec, base, clients)
    strategy = Theirs(_fedavg(flwr), 0.0, len(clients), initial_clipping_norm=0.5)
    theirs = _flower(flwr, strategy, base, clients, mod)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_same_injected_noise_gives_flowers_noisy_aggregate(flwr: Any) -> None:
    """With noise on, both draw from numpy's global generator when told so: same seed, same
    aggregate (ours takes an injected generator; Flower uses np.random)."""
    from flwr.server.strategy import DifferentialPrivacyServerSideFixedClipping as Theirs

    base, clients = _round(4)
    spec = {
        "method": "DifferentialPrivacyServerSideFixedClipping",
        "param": {"noise_multiplier": 1.5, "clipping_norm": 0.3},
    }
    server = AggregationServer("FedAvg", port=0, initial_weights=base, transforms=[spec])

    class GlobalNumpy:  # numpy's global generator, as Flower draws its noise
        def normal(self, loc: float, scale: float, size: Any = None) -> Any:
            return np.random.normal(loc, scale, size)

    import sedna_plugin_transforms.privacy as privacy

    np.random.seed(11)
    original = privacy._noise_source
    privacy._noise_source = lambda ctx, seed: GlobalNumpy()
    try:
        ours = server._aggregate([ArrayUpdate(w, n) for w, n in clients], 1, None)
    finally:
        privacy._noise_source = original
    np.random.seed(11)
    theirs = _flower(flwr, Theirs(_fedavg(flwr), 1.5, 0.3, len(clients)), base, clients)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
