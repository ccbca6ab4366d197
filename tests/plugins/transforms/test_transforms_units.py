"""The first-party update transforms on their own: conformance, round trips, DP noise, clipping
and the accountant against published values."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
from sedna_plugin_transforms import (
    FP16,
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    Int8,
    LocalDP,
    TopK,
    epsilon_of,
)
from sedna_plugin_transforms.privacy import SecureGaussian, l2_norm

from sedna_core.algorithms import BaseUpdateTransform, TransformContext
from sedna_core.algorithms.aggregation import specs_of
from sedna_core.errors import InvalidUpdateError
from sedna_core.jobs.federated._transforms import TransformChain, _pack, _unpack
from sedna_core.plugins import create_algorithm
from sedna_core.testing import parametrize_with_checks

ALL = [
    FP16,
    Int8,
    TopK,
    DifferentialPrivacyServerSideFixedClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyClientSideAdaptiveClipping,
    LocalDP,
]


@parametrize_with_checks(ALL)
def test_conformance(algorithm, check) -> None:
    check(algorithm)


def test_registered_through_the_entry_point() -> None:
    made = create_algorithm("update_transform", {"method": "Int8", "param": {"block": "64"}})
    assert isinstance(made, Int8) and made.block == 64


def _delta(seed: int = 0, scale: float = 0.01) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        (scale * rng.normal(size=(64, 33))).astype(np.float32),
        (scale * rng.normal(size=(33,))).astype(np.float32),
    ]


def _roundtrip(chain: TransformChain, delta: list[np.ndarray], number: int = 1) -> list:
    specs = specs_of(delta)
    base = [np.zeros_like(d) for d in delta]
    wire, _ = chain.encode_update(delta, base, number)
    got = chain.wire_specs(specs)
    assert [(w.dtype, w.shape) for w in wire] == [(s.dtype, s.shape) for s in got]
    return chain.decode(wire, TransformContext(number, specs))


def test_fp16_roundtrip_is_close_and_half_the_bytes() -> None:
    delta = _delta()
    chain = TransformChain([FP16()])
    out = _roundtrip(chain, delta)
    for a, b in zip(out, delta, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-7)
    assert sum(s.nbytes for s in chain.wire_specs(specs_of(delta))) * 2 == sum(
        d.nbytes for d in delta
    )


def test_int8_error_is_within_one_step_and_unbiased() -> None:
    delta = _delta()
    chain = TransformChain([Int8(block=256, seed=1)])
    step = max(float(np.abs(d).max()) for d in delta) / 127
    runs = [_roundtrip(chain, delta, n) for n in range(1, 201)]
    for out in runs[:3]:
        for a, b in zip(out, delta, strict=True):
            assert float(np.abs(a - b).max()) <= step * (1 + 1e-5)
    # stochastic rounding: the mean of many independent roundings approaches the value
    mean = np.mean([r[0] for r in runs], axis=0)
    assert float(np.abs(mean - delta[0]).max()) < step / 4
    wire = sum(s.nbytes for s in chain.wire_specs(specs_of(delta)))
    assert sum(d.nbytes for d in delta) / wire > 3.9


def test_topk_error_feedback_delivers_every_coordinate() -> None:
    delta = _delta()
    topk = TopK(ratio=0.1)
    chain = TransformChain([topk])
    sent = [np.zeros_like(d) for d in delta]
    rounds = 80
    for n in range(1, rounds + 1):
        for s, got in zip(sent, _roundtrip(chain, delta, n), strict=True):
            s += got
    total = [d * rounds for d in delta]
    # what was sent plus what the client still holds is exactly what it meant to send
    for s, r, t in zip(sent, topk._residual, total, strict=True):
        np.testing.assert_allclose(s + r, t, rtol=1e-4, atol=1e-5)
    # and what it holds stays bounded (about one tenth of 40 rounds' worth here), not growing
    assert l2_norm(topk._residual) < 5 * l2_norm(delta)


def test_topk_rejects_bad_indices() -> None:
    delta = _delta()
    chain = TransformChain([TopK(ratio=0.1)])
    specs = specs_of(delta)
    pieces = chain.encode(delta, [np.zeros_like(d) for d in delta], TransformContext(1, specs))
    pieces[0][-1] = specs[0].size  # out of range
    with pytest.raises(InvalidUpdateError, match="indices"):
        chain.decode([_pack(pieces, chain.piece_specs(specs))], TransformContext(1, specs))
    pieces[0][-1] = pieces[0][-2]  # repeated
    with pytest.raises(InvalidUpdateError, match="indices"):
        chain.decode([_pack(pieces, chain.piece_specs(specs))], TransformContext(1, specs))


def test_compressed_updates_travel_as_one_byte_tensor() -> None:
    """One frame header per update instead of one per tensor; aligned, exact round trip."""
    delta = _delta()
    specs = specs_of(delta)
    chain = TransformChain([TopK(ratio=0.1), Int8()])
    assert chain.packed
    pieces = chain.piece_specs(specs)
    (wire_spec,) = chain.wire_specs(specs)
    assert wire_spec.dtype == np.uint8
    # the pieces' bytes and at most itemsize - 1 bytes of alignment padding each
    raw = sum(p.size * p.dtype.itemsize for p in pieces)
    assert raw <= wire_spec.size < raw + 8 * len(pieces)
    base = [np.zeros_like(d) for d in delta]
    wire, _ = chain.encode_update(delta, base, 1)
    assert len(wire) == 1 and wire[0].dtype == np.uint8 and wire[0].shape == wire_spec.shape
    reference = TransformChain([TopK(ratio=0.1), Int8()])
    unpacked = reference.encode(delta, base, TransformContext(1, specs, rng=None))
    got = _unpack(wire, pieces)
    for g, u in zip(got, unpacked, strict=True):
        assert g.flags.aligned and g.dtype == u.dtype and g.shape == u.shape
    np.testing.assert_array_equal(got[0], unpacked[0])  # top-k indices: no randomness
    # a wrong length is refused before any piece decodes
    with pytest.raises(InvalidUpdateError, match="packed update"):
        chain.decode([wire[0][:-1]], TransformContext(1, specs))
    # server-side pieces alone leave the model's tensors as they are
    server_only = TransformChain([DifferentialPrivacyServerSideFixedClipping(0.0, 1.0)])
    assert not server_only.packed and server_only.wire_specs(specs) == specs
    # compression alone leaves the server's aggregation as it is (its streaming path)
    assert not chain.acts_on_server and server_only.acts_on_server
    assert TransformChain([LocalDP(), FP16()]).acts_on_server is False


def test_pieces_that_are_not_packable_keep_their_tensors() -> None:
    """A client-side piece the server combines undecoded (secure aggregation) keeps one
    tensor per wire tensor, and then so does the whole chain."""

    class Summed(BaseUpdateTransform):
        name: ClassVar[str] = "Summed"
        client_side: ClassVar[bool] = True

        def __init__(self) -> None:
            pass

    specs = specs_of(_delta())
    chain = TransformChain([Int8(), Summed()])
    assert not chain.packed
    assert chain.wire_specs(specs) == chain.piece_specs(specs) == Int8().wire_specs(specs)


def test_clip_noise_compress_combine() -> None:
    delta = _delta(scale=1.0)
    chain = TransformChain(
        [
            DifferentialPrivacyClientSideFixedClipping(noise_multiplier=0.0, clipping_norm=0.5),
            TopK(ratio=0.5),
            Int8(),
        ]
    )
    out = _roundtrip(chain, delta)
    assert l2_norm(out) <= 0.5 * 1.05  # clipped before it was compressed


@pytest.mark.parametrize("scale", [1e-4, 0.01, 1.0, 100.0])
@pytest.mark.parametrize(
    "cls", [DifferentialPrivacyServerSideFixedClipping, DifferentialPrivacyClientSideFixedClipping]
)
def test_clipping_bound_holds(cls, scale: float) -> None:
    t = cls(noise_multiplier=0.0, clipping_norm=0.3)
    ctx = TransformContext(1, specs_of(_delta()), num_clients=1)
    for seed in range(5):
        delta = _delta(seed, scale)
        clipped = t.before_aggregation(t.encode(delta, ctx), 1, ctx)
        assert l2_norm(clipped) <= 0.3 * (1 + 1e-6)
        if l2_norm(delta) <= 0.3:  # within the bound: untouched
            for a, b in zip(clipped, delta, strict=True):
                np.testing.assert_array_equal(a, b)


def test_noise_spread_matches_sigma() -> None:
    from scipy import stats

    z, c, n = 1.3, 0.7, 5
    t = DifferentialPrivacyServerSideFixedClipping(noise_multiplier=z, clipping_norm=c, seed=3)
    zeros = [np.zeros(200_000, np.float64), np.zeros((100, 50), np.float64)]
    ctx = TransformContext(1, specs_of(zeros), num_clients=n, total_clients=n)
    noisy = t.after_aggregation(zeros, ctx)
    values = np.concatenate([a.reshape(-1) for a in noisy])
    sigma = z * c / n
    assert abs(values.std() / sigma - 1) < 0.01
    assert abs(values.mean()) < 4 * sigma / math.sqrt(values.size)
    assert stats.kstest(values, "norm", args=(0, sigma)).pvalue > 0.01
    numbers = t.end_round(ctx)
    assert numbers["noise_stddev"] == pytest.approx(sigma)


def test_secure_generator_is_standard_normal() -> None:
    values = SecureGaussian().normal(0.0, 2.0, (1_000_000,))
    assert values.shape == (1_000_000,)
    # five standard errors: these fail with probability below 1e-6
    assert abs(values.mean()) < 5 * 2 / 1000
    assert abs(values.std() - 2) < 5 * 2 / math.sqrt(2 * 1_000_000)


def test_local_dp_noise_follows_the_gaussian_mechanism() -> None:
    t = LocalDP(clipping_norm=1.0, epsilon=0.5, delta=1e-5)
    want = 1.0 * math.sqrt(2 * math.log(1.25 / 1e-5)) / 0.5
    assert t.stddev == pytest.approx(want)
    zeros = [np.zeros(100_000, np.float64)]
    ctx = TransformContext(1, specs_of(zeros), rng=np.random.default_rng(0))
    assert abs(t.encode(zeros, ctx)[0].std() / want - 1) < 0.01


def test_epsilon_matches_published_values() -> None:
    # dp-accounting's own test suite: sigma 4.530877117 gives exactly (1, 1e-6)-DP (q = 1)
    assert epsilon_of(4.530877117, 1.0, 1, 1e-6) == pytest.approx(1.0, abs=1e-3)
    # Abadi et al. 2016, section 3.1: q = 0.01, sigma = 4, delta = 1e-5, T = 10000 gives
    # eps ~ 1.26 with the moments accountant; RDP with today's conversion is a little tighter
    eps = epsilon_of(4.0, 0.01, 10_000, 1e-5)
    assert 0.9 < eps <= 1.26


def test_accounting_composes_and_the_budget_stops() -> None:
    t = DifferentialPrivacyServerSideFixedClipping(
        noise_multiplier=1.0, clipping_norm=1.0, sampling_rate=0.1, max_epsilon=3.0, seed=0
    )
    ctx = TransformContext(1, specs_of(_delta()), num_clients=1, total_clients=10)
    spent = []
    rounds = 0
    while t.budget_exhausted(rounds + 1) is None:
        rounds += 1
        spent.append(t.end_round(ctx)["epsilon"])
        assert rounds < 10_000
    assert spent == sorted(spent) and spent[-1] <= 3.0
    assert epsilon_of(1.0, 0.1, rounds + 1, 1e-5) > 3.0
    assert "privacy budget" in t.budget_exhausted(rounds + 1)
    # the state (rounds spent) survives a checkpoint
    fresh = DifferentialPrivacyServerSideFixedClipping(
        noise_multiplier=1.0, clipping_norm=1.0, sampling_rate=0.1, max_epsilon=3.0
    )
    fresh.load_state_dict(t.state_dict())
    assert fresh.budget_exhausted(rounds + 1) is not None


def test_adaptive_clipping_moves_towards_the_quantile() -> None:
    t = DifferentialPrivacyServerSideAdaptiveClipping(
        noise_multiplier=0.0, initial_clipping_norm=0.01, clip_norm_lr=0.5
    )
    rng = np.random.default_rng(0)
    norms = []
    for n in range(1, 60):
        ctx = TransformContext(n, [], num_clients=10, total_clients=10)
        for _ in range(10):
            d = [rng.normal(size=100)]  # norms near 10
            t.before_aggregation(d, 1, ctx)
        t.after_aggregation([np.zeros(3)], ctx)
        norms.append(t.end_round(ctx)["next_clipping_norm"])
    assert 8 < norms[-1] < 12  # the median norm of the updates


def test_adaptive_noise_needs_enough_count_noise() -> None:
    with pytest.raises(ValueError, match="num_sampled_clients"):
        DifferentialPrivacyServerSideAdaptiveClipping(noise_multiplier=1.0)
    with pytest.raises(ValueError, match="clipped_count_stddev"):
        DifferentialPrivacyServerSideAdaptiveClipping(noise_multiplier=1.0, num_sampled_clients=10)
