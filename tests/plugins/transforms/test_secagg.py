"""SecAgg+ on its own (no network): the field arithmetic of the shares, the masks' statistics,
and whole rounds of the protocol run in memory with dropouts and malformed shares. Every key,
mask and rounding draw comes from fixed seeds."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

pytest.importorskip("cryptography")

from sedna_plugin_transforms.secagg import (
    PRIME,
    SecAggPlus,
    _ClientRound,
    dequantize,
    expand_mask,
    lagrange_at,
    quantize,
    reconstruct,
    split,
)

from sedna_core.algorithms import ArrayUpdate, TensorSpec
from sedna_core.algorithms.secure import PeerKeys, UnmaskInput
from sedna_core.testing import parametrize_with_checks

SHAPES = [(30, 20), (17,)]


@parametrize_with_checks([SecAggPlus])
def test_conformance(algorithm: Any, check: Any) -> None:
    check(algorithm)


def seeded_entropy(seed: int) -> Callable[[int], bytes]:
    rng = np.random.default_rng(seed)
    return lambda n: rng.bytes(n)


def field_rand(seed: int) -> Callable[[int], int]:
    rng = np.random.default_rng(seed)
    return lambda p: int.from_bytes(rng.bytes(80), "big") % p


# -- Shamir shares -------------------------------------------------------------------------
def test_any_threshold_shares_rebuild_the_secret() -> None:
    secret = int.from_bytes(np.random.default_rng(0).bytes(32), "big")
    shares = split(secret, range(1, 8), 4, rand=field_rand(1))
    for subset in itertools.combinations(shares, 4):
        assert reconstruct({x: shares[x] for x in subset}) == secret
    # and all seven lie on one polynomial of degree 3
    assert reconstruct(shares) == secret


def test_fewer_shares_are_consistent_with_every_secret_exhaustively() -> None:
    """Over GF(31) with threshold 3: for every choice of 2 share points, every pair of share
    values arises from exactly one polynomial per secret, so the shares' distribution is the
    same whatever the secret (perfect secrecy, counted on the field arithmetic itself)."""
    p, t = 31, 3
    xs = range(1, 6)
    coefficients = np.array(list(itertools.product(range(p), repeat=t - 1)))  # a1, a2
    for x1, x2 in itertools.combinations(xs, 2):
        for secret in range(p):
            y1 = (secret + coefficients[:, 0] * x1 + coefficients[:, 1] * x1 * x1) % p
            y2 = (secret + coefficients[:, 0] * x2 + coefficients[:, 1] * x2 * x2) % p
            counts = np.zeros((p, p), int)
            np.add.at(counts, (y1, y2), 1)
            assert (counts == 1).all(), (x1, x2, secret)
    # the module's own split agrees with that arithmetic on the small field
    shares = split(7, list(xs), t, prime=p, rand=field_rand(2))
    assert reconstruct({x: shares[x] for x in (2, 4, 5)}, prime=p) == 7


def test_fewer_shares_are_consistent_with_every_secret_on_the_real_field() -> None:
    """t - 1 real shares of a 256-bit seed and any candidate secret: a polynomial of degree
    t - 1 through both exists, and split() with its coefficients deals exactly those shares."""
    t, xs = 4, [3, 5, 8, 9, 11]
    secret = int.from_bytes(np.random.default_rng(3).bytes(32), "big")
    shares = split(secret, xs, t, rand=field_rand(4))
    seen = {x: shares[x] for x in xs[: t - 1]}
    rng = np.random.default_rng(5)
    for candidate in [0, 1, secret, PRIME - 1] + [
        int.from_bytes(rng.bytes(32), "big") for _ in range(20)
    ]:
        points = {0: candidate, **seen}
        # the polynomial's coefficients: its values at 0 and its other t - 1 coefficients,
        # recovered by evaluating it at t points and solving (Lagrange basis)
        values = [lagrange_at(points, x) for x in range(t)]
        coefficients = _coefficients(values)
        assert coefficients[0] == candidate
        draws = iter(coefficients[1:])
        dealt = split(candidate, xs, t, rand=lambda p, draws=draws: next(draws))
        assert {x: dealt[x] for x in seen} == seen
        assert dealt != shares or candidate == secret


def _coefficients(values: Sequence[int]) -> list[int]:
    """Coefficients of the polynomial with ``values`` at 0, 1, ..., n - 1 over GF(PRIME)
    (Gaussian elimination on the Vandermonde system)."""
    n = len(values)
    rows = [[pow(x, k, PRIME) for k in range(n)] + [v % PRIME] for x, v in enumerate(values)]
    for col in range(n):
        pivot = next(r for r in range(col, n) if rows[r][col])
        rows[col], rows[pivot] = rows[pivot], rows[col]
        inv = pow(rows[col][col], -1, PRIME)
        rows[col] = [v * inv % PRIME for v in rows[col]]
        for r in range(n):
            if r != col and rows[r][col]:
                f = rows[r][col]
                rows[r] = [(a - f * b) % PRIME for a, b in zip(rows[r], rows[col], strict=True)]
    return [rows[k][n] for k in range(n)]


def test_split_refuses_impossible_requests() -> None:
    with pytest.raises(ValueError, match="threshold"):
        split(5, [1, 2], 3)
    with pytest.raises(ValueError, match="distinct"):
        split(5, [1, 1, 2], 2)
    with pytest.raises(ValueError, match="field"):
        split(PRIME, [1, 2], 2)


# -- masks and quantisation ---------------------------------------------------------------
def test_mask_stream_is_seekable() -> None:
    seed = bytes(range(32))
    whole = expand_mask(seed, 0, 1000)
    for start, count in [(0, 1), (3, 17), (4, 4), (999, 1), (123, 456)]:
        assert (expand_mask(seed, start, count) == whole[start : start + count]).all()


def test_quantisation_is_unbiased_and_bounded() -> None:
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, size=20000)
    q = quantize(x, 2.0, 1 << 10, rng)
    assert q.min() >= 0 and q.max() <= 1 << 10
    back = dequantize(q, 1, 2.0, 1 << 10)
    assert np.abs(back - x).max() <= 4.0 / (1 << 10) + 1e-12
    assert abs((back - x).mean()) < 1e-4


def test_one_masked_update_is_uniform_over_the_modulus() -> None:
    """The server's view of one client's masked update, for an all-zero (maximally skewed)
    update: a chi-square test over 256 equal bins of the modulus does not tell it from
    uniform, for several fixed seeds and two moduli."""
    from scipy.stats import chisquare

    for modulus, seed in [(1 << 32, 10), (1 << 32, 11), (1 << 16, 12)]:
        piece = SecAggPlus(3, 2, modulus_range=modulus, quantization_range=1 << 8, seed=seed)
        rounds = _keyed(piece, ["a", "b", "c"], seed)
        zero = [np.zeros(20000, np.float32)]
        masked = rounds["a"].mask(zero, 100)[0].astype(np.uint64)
        assert masked.max() < modulus
        bins = np.bincount((masked * 256 // modulus).astype(np.int64), minlength=256)
        assert chisquare(bins).pvalue > 0.001
        # unmasked, the same update sits on one quantisation level: the mask did the work
        plain = quantize(zero[0], piece.clipping_range, piece.quantization_range, np.random)
        assert len(np.unique(plain)) == 1


# -- whole rounds in memory -----------------------------------------------------------------
def _keyed(piece: SecAggPlus, ids: Sequence[str], seed: int) -> dict[str, _ClientRound]:
    rounds = {
        cid: _ClientRound(piece, 1, 0, cid, entropy=seeded_entropy(seed * 1000 + i))
        for i, cid in enumerate(ids)
    }
    plan = piece.plan(list(ids), seed)
    keys = {cid: r.public_keys() for cid, r in rounds.items()}
    sent = {
        cid: r.share_keys(
            plan.index[cid],
            plan.threshold,
            {v: PeerKeys(plan.index[v], keys[v]) for v in plan.neighbours[cid]},
        )
        for cid, r in rounds.items()
    }
    for cid, r in rounds.items():
        r.receive_shares({v: sent[v][0][cid] for v in plan.neighbours[cid]})
    return rounds


class Simulation:
    """One SecAgg+ round as the server runs it, with the network taken out."""

    def __init__(
        self, piece: SecAggPlus, n: int, seed: int = 0, shapes: Sequence[Any] = SHAPES
    ) -> None:
        self.piece = piece
        self.shapes = list(shapes)
        self.largest_read = 0
        self.ids = [f"c{i:02d}" for i in range(n)]
        self.rounds = {
            cid: _ClientRound(piece, 1, 0, cid, entropy=seeded_entropy(seed * 1000 + i))
            for i, cid in enumerate(self.ids)
        }
        rng = np.random.default_rng(seed)
        self.deltas = {
            cid: [rng.normal(scale=0.1, size=s).astype(np.float32) for s in self.shapes]
            for cid in self.ids
        }
        self.samples = {cid: int(rng.integers(10, 500)) for cid in self.ids}
        self.plan = piece.plan(self.ids, seed)
        self.keys = {cid: r.public_keys() for cid, r in self.rounds.items()}
        self.sent: dict[str, dict[str, bytes]] = {}
        self.commitments: dict[str, bytes] = {}
        for cid, r in self.rounds.items():
            peers = {
                v: PeerKeys(self.plan.index[v], self.keys[v]) for v in self.plan.neighbours[cid]
            }
            self.sent[cid], self.commitments[cid] = r.share_keys(
                self.plan.index[cid], self.plan.threshold, peers
            )

    def run(
        self,
        *,
        before_upload: Sequence[str] = (),
        after_upload: Sequence[str] = (),
        corrupt: Callable[[str, str, bytes], bytes] | None = None,
        tamper_reveal: Callable[[str, dict[str, bytes]], dict[str, bytes]] | None = None,
    ) -> tuple[list[np.ndarray], list[str]]:
        members = set(self.ids)
        for cid, r in self.rounds.items():
            inbox = {}
            for v in self.plan.neighbours[cid]:
                ct = self.sent[v][cid]
                inbox[v] = corrupt(v, cid, ct) if corrupt else ct
            r.receive_shares(inbox)
        uploaded = [c for c in self.ids if c not in before_upload]
        sources = {
            c: Recording(self, ArrayUpdate(self.rounds[c].mask(self.deltas[c], self.samples[c]), 1))
            for c in uploaded
        }
        reveals = {}
        for u in uploaded:
            if u in after_upload:
                continue
            near = set(self.plan.neighbours[u]) & members
            ok = sorted((near & set(uploaded)) | {u})
            gone = sorted(near - set(uploaded))
            shares = self.rounds[u].reveal(ok, gone)
            reveals[u] = tamper_reveal(u, shares) if tamper_reveal else shares
        specs = [TensorSpec(None, np.float32, s) for s in self.shapes]
        job = UnmaskInput(
            1, 0, specs, self.plan, self.keys, self.commitments, self.ids, sources, reveals
        )
        return self.piece.unmask(job), uploaded

    def fedavg(self, included: Sequence[str]) -> list[np.ndarray]:
        total = sum(self.samples[c] for c in included)
        return [
            sum(self.samples[c] * self.deltas[c][k].astype(np.float64) for c in included) / total
            for k in range(len(self.shapes))
        ]

    def tolerance(self, included: Sequence[str]) -> float:
        """The quantisation error bound: one step per client on the weighted sum, divided by
        the sum of weights, plus the weights' own rounding (one step each)."""
        p = self.piece
        step = 2 * p.clipping_range / p.quantization_range
        weights = sum(min(self.samples[c] / p.max_weight, 1.0) for c in included)
        n = len(included)
        biggest = max(float(np.abs(d).max()) for c in included for d in self.deltas[c])
        return n * step / weights + biggest * n / p.quantization_range / weights + 1e-6


class Recording:
    """An update source that notes the largest block the server reads from it."""

    def __init__(self, sim: Simulation, inner: ArrayUpdate) -> None:
        self.sim, self.inner, self.num_samples = sim, inner, inner.num_samples

    def read(self, index: int, start: int, stop: int, out: Any = None) -> np.ndarray:
        self.sim.largest_read = max(self.sim.largest_read, stop - start)
        return self.inner.read(index, start, stop, out)


def _close(got: list[np.ndarray], want: list[np.ndarray], tol: float) -> None:
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        assert np.abs(g - w).max() <= tol


def test_aggregate_equals_fedavg_within_the_quantisation_error() -> None:
    sim = Simulation(SecAggPlus(num_shares=5, reconstruction_threshold=3), 10, seed=1)
    got, included = sim.run()
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_the_server_reads_masked_updates_block_by_block() -> None:
    """Streaming: unmasking a model larger than a block never reads a whole tensor of an
    update at once (server memory: the result plus one block per stream)."""
    from sedna_core.algorithms.aggregation import BLOCK_ELEMENTS

    shapes = [(3 * BLOCK_ELEMENTS + 5,), (3,)]
    sim = Simulation(SecAggPlus(num_shares=3, reconstruction_threshold=2), 3, seed=9, shapes=shapes)
    got, included = sim.run()
    assert 0 < sim.largest_read <= BLOCK_ELEMENTS
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_two_of_ten_dropping_after_the_masked_upload() -> None:
    """Their updates count (they arrived); the survivors reveal their self-mask seeds."""
    sim = Simulation(SecAggPlus(num_shares=5, reconstruction_threshold=3), 10, seed=2)
    got, included = sim.run(after_upload=["c03", "c04"])
    assert len(included) == 10
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_two_of_ten_dropping_before_the_masked_upload() -> None:
    """Their pairwise masks are removed with their mask keys, rebuilt from shares."""
    sim = Simulation(SecAggPlus(num_shares=5, reconstruction_threshold=3), 10, seed=3)
    got, included = sim.run(before_upload=["c01", "c07"])
    assert sorted(included) == sorted(set(sim.ids) - {"c01", "c07"})
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_full_graph_with_fractions() -> None:
    sim = Simulation(SecAggPlus(num_shares=1.0, reconstruction_threshold=0.6), 10, seed=4)
    assert sim.plan.threshold == 6 and all(len(v) == 9 for v in sim.plan.neighbours.values())
    got, included = sim.run(before_upload=["c00"], after_upload=["c09", "c05"])
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_below_the_threshold_unmasking_fails_with_the_reason() -> None:
    sim = Simulation(SecAggPlus(num_shares=3, reconstruction_threshold=3), 5, seed=5)
    # c0x's seed shares: itself and its two ring neighbours; without two of them, too few
    victim = "c00"
    holders = sim.plan.neighbours[victim]
    with pytest.raises(ValueError, match="could not be rebuilt"):
        sim.run(after_upload=[victim, holders[0]])


def test_corrupted_ciphertexts_are_skipped() -> None:
    """A client's ciphertext that does not decrypt at its recipient: the recipient skips that
    share; enough others remain and the aggregate is still right."""
    sim = Simulation(SecAggPlus(num_shares=5, reconstruction_threshold=3), 8, seed=6)

    victim = sim.plan.neighbours["c02"][0]

    def corrupt(sender: str, recipient: str, ct: bytes) -> bytes:
        if sender == "c02" and recipient == victim:
            return ct[:-1] + bytes([ct[-1] ^ 1])
        return ct

    got, included = sim.run(corrupt=corrupt, after_upload=["c02"])
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_wrong_revealed_shares_are_outvoted_by_the_commitment() -> None:
    """A holder revealing a wrong share (or garbage bytes): reconstruction tries other subsets
    until the seed matches its commitment."""
    sim = Simulation(SecAggPlus(num_shares=7, reconstruction_threshold=3), 9, seed=7)

    def tamper(holder: str, shares: dict[str, bytes]) -> dict[str, bytes]:
        if holder == "c04":
            return {k: bytes(66) if i % 2 else b"junk" for i, k in enumerate(shares)}
        return shares

    got, included = sim.run(tamper_reveal=tamper)
    _close(got, sim.fedavg(included), sim.tolerance(included))


def test_clients_refuse_to_reveal_both_secrets() -> None:
    sim = Simulation(SecAggPlus(num_shares=3, reconstruction_threshold=2), 5, seed=8)
    r = sim.rounds["c00"]
    with pytest.raises(ValueError, match="both secrets"):
        r.reveal(["c00", "c01"], ["c01"])
    with pytest.raises(ValueError, match="fewer than the threshold"):
        r.reveal(["c00"], [])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_shares": 2}, "at least 3"),
        ({"num_shares": 3, "reconstruction_threshold": 4}, "exceeds"),
        ({"modulus_range": 1000}, "power of two"),
        ({"modulus_range": 1 << 33}, "power of two"),
        ({"quantization_range": 1 << 32}, "quantization_range"),
        ({"clipping_range": 0}, "clipping_range"),
        ({"num_shares": 1.5}, "num_shares"),
    ],
)
def test_parameters_are_checked(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SecAggPlus(**kwargs)


def test_plan_names_why_a_round_cannot_run() -> None:
    plan = SecAggPlus(num_shares=5, reconstruction_threshold=4).plan(["a", "b", "c"], 0)
    assert "needs at least 4 clients" in plan.error
    small = SecAggPlus(quantization_range=1 << 30, modulus_range=1 << 32)
    assert "too small" in small.plan([f"c{i}" for i in range(5)], 0).error
    ring = SecAggPlus(num_shares=4, reconstruction_threshold=3).plan(
        [f"c{i}" for i in range(10)], 0
    )
    # an even count becomes the next odd one: symmetric neighbours, 4 each
    assert all(len(v) == 4 for v in ring.neighbours.values())
    for u, near in ring.neighbours.items():
        assert all(u in ring.neighbours[v] for v in near)
