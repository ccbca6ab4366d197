"""SecAgg+ (Bell et al., CCS 2020): the server learns the sum of the round's updates, not one.

Primitives come from ``cryptography``: X25519 key agreement, HKDF-SHA256, ChaCha20-Poly1305
(the shares on their way through the server) and AES-256-CTR (the pseudo-random generator that
expands a 32-byte seed into a mask, seekable so the server removes masks block by block). The
protocol's own arithmetic is here: Shamir secret sharing over the prime field of
``2**521 - 1`` (one field element holds a 32-byte secret), stochastic quantisation and masking
modulo ``modulus_range``. Parameters follow Flower's ``SecAggPlusWorkflow``.

Per round, client ``u`` (index ``x_u``) with neighbours ``N(u)`` (a ring of ``num_shares``
clients around it, drawn by the server):

* masked update ``y_u = q(w_u * delta_u) + PRG(b_u) + sum_{v in N(u)} sign(u, v) PRG(s_uv)``
  modulo ``M``, where ``w_u = min(num_samples / max_weight, 1)`` (FedAvg's weight, folded in
  before quantisation as Flower does; ``q`` also carries ``w_u`` itself in a last element),
  ``b_u`` a fresh 32-byte self-mask seed and ``s_uv = HKDF(X25519(sk_u, pk_v))``, with
  ``sign = +1`` when ``u < v``;
* its shares of ``b_u`` and of the mask key ``sk_u`` go, encrypted for each neighbour with a key
  agreed on the second key pair, through the server; ``t`` (``reconstruction_threshold``) of
  them rebuild a secret, fewer say nothing about it.

The server adds the masked updates of the survivors ``S`` (pairwise masks between survivors
cancel), rebuilds each survivor's ``b_u`` and each dropped neighbour's ``sk_v`` from the
survivors' shares, removes ``PRG(b_u)`` and the dropped pairs' masks, and dequantises:
``sum_u w_u delta_u / sum_u w_u`` is FedAvg's mean delta up to the quantisation step.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import os
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import TensorSpec
from sedna_core.algorithms.aggregation import BLOCK_ELEMENTS
from sedna_core.algorithms.secure import (
    BaseSecureAggregation,
    PeerKeys,
    SecureClientRound,
    SecurePlan,
    UnmaskError,
    UnmaskInput,
)
from sedna_core.log import get_logger

__all__ = [
    "PRIME",
    "SecAggPlus",
    "dequantize",
    "expand_mask",
    "lagrange_at",
    "quantize",
    "reconstruct",
    "split",
]

#: the Mersenne prime 2**521 - 1: the field of the Shamir shares (a 256-bit secret fits)
PRIME = (1 << 521) - 1
_ELEMENT_BYTES = (PRIME.bit_length() + 7) // 8  # 66
#: most subsets of shares tried when some shares are inconsistent with the commitment
_MAX_SUBSETS = 256
_INFO_ENC = b"sedna secagg+ share encryption"
_INFO_MASK = b"sedna secagg+ pairwise mask"
_INFO_SELF = b"sedna secagg+ self mask"
_COMMIT = b"sedna secagg+ seed commitment"
WIRE_DTYPE = np.dtype("<u4")


# -- Shamir secret sharing over GF(p) ---------------------------------------------------------
def split(
    secret: int, xs: Sequence[int], threshold: int, prime: int = PRIME, rand: Any = None
) -> dict[int, int]:
    """Shares ``{x: f(x)}`` of ``secret`` for the nonzero points ``xs``, where ``f`` is a random
    polynomial of degree ``threshold - 1`` with ``f(0) = secret``. ``rand(p)`` draws a uniform
    coefficient below ``p`` (default: the operating system's CSPRNG)."""
    if not 0 <= secret < prime:
        raise ValueError("the secret must lie in the field")
    if not 1 <= threshold <= len(xs):
        raise ValueError(f"threshold {threshold} needs 1 to {len(xs)} shares")
    if len(set(xs)) != len(xs) or any(not 0 < x < prime for x in xs):
        raise ValueError("share points must be distinct and nonzero in the field")
    draw = rand or secrets.randbelow
    coefficients = [secret] + [draw(prime) for _ in range(threshold - 1)]
    shares = {}
    for x in xs:
        value = 0
        for c in reversed(coefficients):  # Horner
            value = (value * x + c) % prime
        shares[x] = value
    return shares


def lagrange_at(points: Mapping[int, int], x: int, prime: int = PRIME) -> int:
    """The value at ``x`` of the polynomial of degree ``< len(points)`` through ``points``."""
    total = 0
    for xi, yi in points.items():
        num, den = 1, 1
        for xj in points:
            if xj != xi:
                num = num * (x - xj) % prime
                den = den * (xi - xj) % prime
        total = (total + yi * num * pow(den, -1, prime)) % prime
    return total


def reconstruct(points: Mapping[int, int], prime: int = PRIME) -> int:
    """The secret ``f(0)`` from ``threshold`` shares (more are fine when consistent)."""
    return lagrange_at(points, 0, prime)


# -- quantisation and masks -------------------------------------------------------------------
def quantize(
    values: np.ndarray, clipping_range: float, quantization_range: int, rng: Any
) -> np.ndarray:
    """``values`` clipped to ``[-c, c]`` and mapped to integers in ``[0, q]`` with stochastic
    rounding (unbiased: the expected dequantised value is the clipped value)."""
    scaled = (
        np.clip(values.astype(np.float64), -clipping_range, clipping_range) + clipping_range
    ) * (quantization_range / (2.0 * clipping_range))
    floor = np.floor(scaled)
    up = rng.random(scaled.shape) < (scaled - floor)
    return (floor + up).astype(np.uint64)


def dequantize(
    total: np.ndarray, count: int, clipping_range: float, quantization_range: int
) -> np.ndarray:
    """The sum of ``count`` clipped values from the sum of their quantisations."""
    step = 2.0 * clipping_range / quantization_range
    return total.astype(np.float64) * step - count * clipping_range


def expand_mask(seed: bytes, start: int, count: int) -> np.ndarray:
    """Elements ``start .. start + count`` of the uint32 mask stream of ``seed``: AES-256-CTR's
    keystream (counter from zero), so any block of it is computed without the ones before."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    first = start * 4
    block, skip = divmod(first, 16)
    cipher = Cipher(algorithms.AES(seed), modes.CTR(block.to_bytes(16, "big")))
    stream = cipher.encryptor().update(bytes(skip + count * 4))
    return np.frombuffer(stream, dtype=WIRE_DTYPE, count=count, offset=skip)


def _hkdf(secret: bytes, info: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


def _agree(private: Any, public: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    return private.exchange(X25519PublicKey.from_public_bytes(public))  # type: ignore[no-any-return]


def _context(round_number: int, attempt: int) -> bytes:
    return f"{round_number}:{attempt}".encode()


def _pair_seed(private: Any, public: bytes, round_number: int, attempt: int) -> bytes:
    return _hkdf(_agree(private, public), _INFO_MASK + _context(round_number, attempt))


def _self_seed(b: bytes) -> bytes:
    return _hkdf(b, _INFO_SELF)


def commitment(b: bytes) -> bytes:
    """The commitment to a 32-byte self-mask seed (SHA-256 of a random seed hides it)."""
    return hashlib.sha256(_COMMIT + b).digest()


def _element(value: int) -> bytes:
    return value.to_bytes(_ELEMENT_BYTES, "big")


def _from_element(data: bytes) -> int:
    if len(data) != _ELEMENT_BYTES:
        raise ValueError(f"a share is {_ELEMENT_BYTES} bytes, got {len(data)}")
    value = int.from_bytes(data, "big")
    if value >= PRIME:
        raise ValueError("a share lies outside the field")
    return value


def _private_from_int(value: int) -> Any:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    if value >= 1 << 256:
        raise ValueError("the reconstructed mask key is not 32 bytes")
    return X25519PrivateKey.from_private_bytes(value.to_bytes(32, "big"))


def _public_raw(private: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )


def _private_raw(private: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def _aad(round_number: int, attempt: int, sender: str, recipient: str) -> bytes:
    return _context(round_number, attempt) + b"|" + sender.encode() + b"->" + recipient.encode()


def _whole_or_share(value: Any, name: str) -> None:
    ok_int = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    ok_float = isinstance(value, float) and 0 < value <= 1
    if not (ok_int or ok_float):
        raise ValueError(f"{name} must be an integer >= 1 or a share in (0, 1], got {value!r}")


class SecAggPlus(BaseSecureAggregation):
    """SecAgg+ secure aggregation (Flower's ``SecAggPlusWorkflow`` parameters).

    Parameters
    ----------
    num_shares
        Shares of each client's secrets (itself and its neighbours): an integer, or a share in
        (0, 1] of the round's clients. An even count below the round's clients becomes the
        next odd one (the neighbours form a symmetric ring); at least 3, at most all.
    reconstruction_threshold
        Shares that rebuild a secret (fewer reveal nothing): an integer, or a share in (0, 1]
        of ``num_shares``. A round needs this many surviving clients; choose it above half of
        ``num_shares`` (see the docs).
    max_weight
        FedAvg weight: each update is multiplied by ``min(num_samples / max_weight, 1)``
        before quantisation; exact FedAvg when no client has more samples than this.
    clipping_range
        Each coordinate of a weighted delta is clipped to ``[-clipping_range, clipping_range]``:
        the most any client can move the sum.
    quantization_range
        Quantisation levels over ``[-c, c]``: the step is ``2 c / quantization_range``.
    modulus_range
        The masks' modulus, a power of two up to ``2**32``; must exceed the round's clients
        times ``quantization_range`` (the sum must not wrap).
    seed
        Seed of the clients' stochastic rounding (None: fresh entropy). Keys and masks are
        always fresh from the operating system.
    """

    name: ClassVar[str] = "SecAggPlus"
    key_names: ClassVar[tuple[str, ...]] = ("enc", "mask")
    key_bytes: ClassVar[int] = 32
    max_ciphertext_bytes: ClassVar[int] = 12 + 2 * _ELEMENT_BYTES + 16
    max_share_bytes: ClassVar[int] = _ELEMENT_BYTES

    def __init__(
        self,
        num_shares: int | float = 3,
        reconstruction_threshold: int | float = 2,
        max_weight: float = 1000.0,
        clipping_range: float = 8.0,
        quantization_range: int = 4194304,
        modulus_range: int = 4294967296,
        seed: int | None = None,
    ) -> None:
        _whole_or_share(num_shares, "num_shares")
        _whole_or_share(reconstruction_threshold, "reconstruction_threshold")
        if isinstance(num_shares, int) and num_shares < 3:
            raise ValueError(f"num_shares must be at least 3, got {num_shares}")
        if (
            isinstance(num_shares, int)
            and isinstance(reconstruction_threshold, int)
            and reconstruction_threshold > num_shares
        ):
            raise ValueError(
                f"reconstruction_threshold {reconstruction_threshold} exceeds num_shares "
                f"{num_shares}: no secret could ever be rebuilt"
            )
        if (
            isinstance(num_shares, int)
            and isinstance(reconstruction_threshold, int)
            and 2 * reconstruction_threshold <= num_shares
        ) or (isinstance(reconstruction_threshold, float) and reconstruction_threshold <= 0.5):
            # Below a majority, a server that tells different clients different dropout lists
            # can collect both secrets of one client (Bell et al.): allowed, as in Flower, but
            # the user should know.
            get_logger(__name__).warning(
                "weak SecAgg+ threshold: reconstruction_threshold should be more than half of "
                "num_shares, or a malicious server may unmask single updates; raise it",
                num_shares=num_shares,
                reconstruction_threshold=reconstruction_threshold,
            )
        if not (isinstance(max_weight, int | float) and max_weight > 0):
            raise ValueError(f"max_weight must be > 0, got {max_weight!r}")
        if not (isinstance(clipping_range, int | float) and 0 < clipping_range < math.inf):
            raise ValueError(f"clipping_range must be a number > 0, got {clipping_range!r}")
        if not (isinstance(modulus_range, int) and 2 <= modulus_range <= 1 << 32) or (
            modulus_range & (modulus_range - 1)
        ):
            raise ValueError(
                f"modulus_range must be a power of two up to 2**32, got {modulus_range!r}"
            )
        if not (isinstance(quantization_range, int) and 1 <= quantization_range < modulus_range):
            raise ValueError(
                f"quantization_range must be an integer from 1 to modulus_range - 1, got "
                f"{quantization_range!r}"
            )
        self.num_shares = num_shares
        self.reconstruction_threshold = reconstruction_threshold
        self.max_weight = float(max_weight)
        self.clipping_range = float(clipping_range)
        self.quantization_range = quantization_range
        self.modulus_range = modulus_range
        self.seed = seed

    # -- shapes --------------------------------------------------------------------------
    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        """One uint32 tensor per model tensor, then the weight (one element)."""
        return [TensorSpec(s.name, WIRE_DTYPE, s.shape) for s in specs] + [
            TensorSpec(None, WIRE_DTYPE, (1,))
        ]

    # -- the plan ------------------------------------------------------------------------
    def sizes(self, n: int) -> tuple[int, int]:
        """(shares per secret, threshold) for a round of ``n`` clients."""
        k = self.num_shares
        shares = math.ceil(k * n) if isinstance(k, float) else k
        shares = max(3, shares)
        if shares < n and shares % 2 == 0:
            shares += 1
        shares = min(shares, n)
        t = self.reconstruction_threshold
        threshold = math.ceil(t * shares) if isinstance(t, float) else t
        return shares, max(1, threshold)

    def plan(self, clients: Sequence[str], seed: Any) -> SecurePlan:
        n = len(clients)
        shares, threshold = self.sizes(n)
        if n * self.quantization_range >= self.modulus_range:
            return SecurePlan(
                {},
                {},
                threshold,
                error=(
                    f"modulus_range {self.modulus_range} is too small for {n} clients: their "
                    f"sum needs more than {n} x quantization_range ({self.quantization_range}); "
                    "raise modulus_range or lower quantization_range"
                ),
            )
        if threshold > shares or n < threshold:
            return SecurePlan(
                {},
                {},
                threshold,
                error=(
                    f"{n} client(s) sent keys, but reconstruction_threshold is {threshold} "
                    f"(of {shares} shares): the round needs at least {threshold} clients"
                ),
            )
        # A ring in a random order (the server's seed: the server draws the graph anyway);
        # each client's neighbours are the (shares - 1) / 2 on either side.
        order = sorted(clients)
        rng = np.random.default_rng(seed)
        order = [order[i] for i in rng.permutation(n)]
        half = (shares - 1) // 2
        neighbours: dict[str, list[str]] = {}
        for pos, cid in enumerate(order):
            if shares >= n:
                near = [c for c in order if c != cid]
            else:
                near = [order[(pos + d) % n] for d in range(-half, half + 1) if d != 0]
            neighbours[cid] = sorted(near)
        index = {cid: i + 1 for i, cid in enumerate(sorted(clients))}
        return SecurePlan(index, neighbours, threshold)

    def check_public_keys(self, keys: Mapping[str, bytes]) -> None:
        """Refuse low-order points (the all-zero key...): every X25519 secret agreed with one
        is zero, which ``cryptography`` refuses, so each neighbour's round would break. One
        probe scalar tells them apart: clamped scalars clear the cofactor whatever their value."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        probe = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
        for name, data in keys.items():
            try:
                _agree(probe, data)
            except ValueError:
                raise ValueError(
                    f"key {name!r} is not a usable X25519 public key (a low-order point: every "
                    "secret agreed with it is zero); send a freshly generated key"
                ) from None

    # -- client side ---------------------------------------------------------------------
    def client_round(self, round_number: int, attempt: int, client_id: str) -> SecureClientRound:
        return _ClientRound(self, round_number, attempt, client_id)

    # -- server side ---------------------------------------------------------------------
    def unmask(self, job: UnmaskInput) -> list[np.ndarray]:
        plan = job.plan
        survivors = sorted(job.sources)
        shared = set(job.shared)
        dropped = sorted(shared - set(survivors))
        t = plan.threshold
        if len(survivors) < t:
            raise ValueError(
                f"only {len(survivors)} masked update(s) arrived, fewer than the reconstruction "
                f"threshold {t}"
            )
        holders = sorted(h for h, shares in job.reveals.items() if shares)
        if len(holders) < t:
            raise ValueError(
                f"only {len(holders)} client(s) revealed their shares, fewer than the "
                f"reconstruction threshold {t} (the others dropped after their masked upload)"
            )
        self_seeds = {}
        failed: list[str] = []
        culprits: list[str] = []
        for u in survivors:
            points = self._points(job, u)
            secret = self._rebuild(
                points, t, lambda v, u=u: commitment(_to32(v)) == job.commitments[u]
            )
            if secret is None:
                failed.append(
                    f"client {u!r}'s self-mask seed could not be rebuilt: {len(points)} valid "
                    f"share(s) revealed, {t} needed (or they disagree with its commitment)"
                )
                # more than t shares on one polynomial: they are the ones u dealt (framing it
                # would take len(points) - t + 1 lying holders), so u's commitment lied
                if len(points) > t and _consistent(points, t):
                    culprits.append(u)
                continue
            self_seeds[u] = _self_seed(_to32(secret))
        if failed:
            raise UnmaskError("; ".join(failed[:3]), culprits)
        # each survivor masked with its dropped neighbours: rebuild their mask keys
        corrections: list[tuple[bytes, int]] = []  # (seed, sign to apply to the sum)
        for v in dropped:
            partners = [u for u in plan.neighbours.get(v, ()) if u in job.sources]
            if not partners:
                continue
            points = self._points(job, v)
            pk = job.keys[v]["mask"]

            def matches(value: int, pk: bytes = pk) -> bool:
                try:
                    return _public_raw(_private_from_int(value)) == pk
                except ValueError:
                    return False

            secret = self._rebuild(points, t, matches)
            if secret is None:
                raise ValueError(
                    f"client {v!r} dropped before its masked update and its mask key could not "
                    f"be rebuilt: {len(points)} valid share(s) revealed, {t} needed"
                )
            sk = _private_from_int(secret)
            for u in partners:
                seed = _pair_seed(sk, job.keys[u]["mask"], job.round_number, job.attempt)
                # u added sign(u, v) * mask: take it away
                corrections.append((seed, -1 if u < v else 1))
        return self._sum(job, survivors, self_seeds, corrections)

    def _points(self, job: UnmaskInput, owner: str) -> dict[int, int]:
        points = {}
        for holder, shares in job.reveals.items():
            data = shares.get(owner)
            if data is None or holder not in job.plan.index:
                continue
            try:
                points[job.plan.index[holder]] = _from_element(data)
            except ValueError:
                continue  # a malformed share counts as missing
        return points

    @staticmethod
    def _rebuild(points: Mapping[int, int], t: int, check: Any) -> int | None:
        """The secret from ``t`` of ``points`` that passes ``check`` (a wrong share from a
        faulty holder is skipped by trying other subsets, up to :data:`_MAX_SUBSETS`)."""
        if len(points) < t:
            return None
        xs = sorted(points)
        for subset in itertools.islice(itertools.combinations(xs, t), _MAX_SUBSETS):
            value = reconstruct({x: points[x] for x in subset})
            if check(value):
                return value
        return None

    def _sum(
        self,
        job: UnmaskInput,
        survivors: Sequence[str],
        self_seeds: Mapping[str, bytes],
        corrections: Sequence[tuple[bytes, int]],
    ) -> list[np.ndarray]:
        """The unmasked, dequantised mean delta, one block at a time: the server holds the
        result (one model) and one block of each stream, never a whole update."""
        specs = list(job.specs)
        modulus_mask = np.uint64(self.modulus_range - 1)
        sources = [job.sources[u] for u in survivors]
        offsets = []
        pos = 0
        for s in specs:
            offsets.append(pos)
            pos += s.size

        def unmasked(index: int, start: int, stop: int, offset: int) -> np.ndarray:
            acc = np.zeros(stop - start, np.uint64)
            for source in sources:
                acc += source.read(index, start, stop)
            for seed in self_seeds.values():
                acc -= expand_mask(seed, offset + start, stop - start)
            for seed, sign in corrections:
                block = expand_mask(seed, offset + start, stop - start).astype(np.uint64)
                if sign > 0:
                    acc += block
                else:
                    acc -= block
            acc &= modulus_mask  # uint64 wraps modulo 2**64, a multiple of the modulus
            # n honest clients' levels (and weights) in [0, q] sum to at most n q < modulus:
            # more proves that some client masked values outside the range (a hostile one
            # could otherwise own the mean, or put random words in it)
            if stop > start and int(acc.max()) > ceiling:
                raise ValueError(
                    "the unmasked sum lies outside the range the survivors' clipped updates "
                    "can sum to: a client masked values outside the quantization range (a "
                    "broken or hostile client); the aggregate is refused"
                )
            return acc

        n = len(sources)
        ceiling = n * self.quantization_range
        weight_total = int(unmasked(len(specs), 0, 1, pos)[0]) / self.quantization_range
        if weight_total <= 0:
            raise ValueError("the surviving updates' weights sum to zero (num_samples of 0?)")
        out = []
        for i, spec in enumerate(specs):
            flat = np.empty(spec.size, dtype=spec.dtype if spec.dtype.kind in "fc" else np.float64)
            for start in range(0, spec.size, BLOCK_ELEMENTS):
                stop = min(spec.size, start + BLOCK_ELEMENTS)
                total = dequantize(
                    unmasked(i, start, stop, offsets[i]),
                    n,
                    self.clipping_range,
                    self.quantization_range,
                )
                flat[start:stop] = total / weight_total
            out.append(flat.reshape(spec.shape))
        return out


def _consistent(points: Mapping[int, int], t: int) -> bool:
    """Whether all ``points`` lie on the polynomial of degree ``< t`` through the first ``t``."""
    xs = sorted(points)
    first = {x: points[x] for x in xs[:t]}
    return all(lagrange_at(first, x) == points[x] for x in xs[t:])


def _field_draw(entropy: Callable[[int], bytes]) -> Callable[[int], int]:
    """A uniform draw below ``p`` from a byte source (rejection sampling: no bias)."""

    def draw(prime: int) -> int:
        nbytes = (prime.bit_length() + 7) // 8
        excess = nbytes * 8 - prime.bit_length()
        while True:
            value = int.from_bytes(entropy(nbytes), "big") >> excess
            if value < prime:
                return value

    return draw


def _to32(value: int) -> bytes:
    if value >= 1 << 256:
        return b"\x00" * 33  # never a seed: its commitment cannot match
    return value.to_bytes(32, "big")


class _ClientRound(SecureClientRound):
    """One client's secrets of one round."""

    def __init__(
        self,
        owner: SecAggPlus,
        round_number: int,
        attempt: int,
        client_id: str,
        entropy: Callable[[int], bytes] = os.urandom,
    ) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        self.owner = owner
        self.round_number = round_number
        self.attempt = attempt
        self.client_id = client_id
        # ``entropy`` is the operating system's CSPRNG; tests pass a seeded one to fix keys
        self._entropy = entropy
        self._enc = X25519PrivateKey.from_private_bytes(entropy(32))
        self._mask = X25519PrivateKey.from_private_bytes(entropy(32))
        self._b = entropy(32)
        self.index = 0
        self.threshold = 0
        self.peers: dict[str, PeerKeys] = {}
        #: owner -> (share of its seed, share of its mask key) held by this client
        self.held: dict[str, tuple[int, int]] = {}
        self.senders: list[str] = []
        self.revealed = False

    def public_keys(self) -> dict[str, bytes]:
        return {"enc": _public_raw(self._enc), "mask": _public_raw(self._mask)}

    def _cipher(self, peer: str) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        key = _hkdf(
            _agree(self._enc, self.peers[peer].keys["enc"]),
            _INFO_ENC + _context(self.round_number, self.attempt),
        )
        return ChaCha20Poly1305(key)

    def share_keys(
        self, index: int, threshold: int, peers: Mapping[str, PeerKeys]
    ) -> tuple[dict[str, bytes], bytes]:
        if self.client_id in peers:
            raise ValueError("the server listed this client among its own neighbours")
        indices = [p.index for p in peers.values()] + [index]
        if len(set(indices)) != len(indices) or min(indices) < 1:
            raise ValueError("the neighbours' indices are not distinct positive numbers")
        if not 1 <= threshold <= len(indices):
            raise ValueError(f"threshold {threshold} does not fit {len(indices)} shares")
        for peer in peers.values():
            if any(len(peer.keys.get(k, b"")) != 32 for k in ("enc", "mask")):
                raise ValueError("a neighbour's public keys are not 32 bytes each")
        self.index, self.threshold, self.peers = index, threshold, dict(peers)
        rand = _field_draw(self._entropy)
        b_shares = split(int.from_bytes(self._b, "big"), indices, threshold, rand=rand)
        sk_shares = split(
            int.from_bytes(_private_raw(self._mask), "big"), indices, threshold, rand=rand
        )
        self.held[self.client_id] = (b_shares[index], sk_shares[index])
        out = {}
        for peer, keys in peers.items():
            nonce = self._entropy(12)
            plain = _element(b_shares[keys.index]) + _element(sk_shares[keys.index])
            aad = _aad(self.round_number, self.attempt, self.client_id, peer)
            out[peer] = nonce + self._cipher(peer).encrypt(nonce, plain, aad)
        return out, commitment(self._b)

    def receive_shares(self, ciphertexts: Mapping[str, bytes]) -> list[str]:
        from cryptography.exceptions import InvalidTag

        bad = []
        self.senders = []
        for sender, data in ciphertexts.items():
            if sender not in self.peers:
                bad.append(sender)
                continue
            self.senders.append(sender)  # masked with: it sent its shares through the server
            try:
                aad = _aad(self.round_number, self.attempt, sender, self.client_id)
                plain = self._cipher(sender).decrypt(data[:12], data[12:], aad)
                b_share = _from_element(plain[:_ELEMENT_BYTES])
                sk_share = _from_element(plain[_ELEMENT_BYTES:])
            except (InvalidTag, ValueError):
                bad.append(sender)
                continue
            self.held[sender] = (b_share, sk_share)
        return sorted(bad)

    def mask(self, delta: list[np.ndarray], num_samples: int) -> list[np.ndarray]:
        o = self.owner
        rng = np.random.default_rng(
            None if o.seed is None else [o.seed, self.round_number, self.attempt, self.index]
        )
        weight = min(num_samples / o.max_weight, 1.0)
        quantised = [
            quantize(
                np.asarray(d).reshape(-1) * weight, o.clipping_range, o.quantization_range, rng
            )
            for d in delta
        ]
        quantised.append(quantize_weight(weight, o.quantization_range, rng))
        seeds: list[tuple[bytes, int]] = [(_self_seed(self._b), 1)]
        for peer in self.senders:
            seed = _pair_seed(
                self._mask, self.peers[peer].keys["mask"], self.round_number, self.attempt
            )
            seeds.append((seed, 1 if self.client_id < peer else -1))
        modulus_mask = np.uint64(o.modulus_range - 1)
        out = []
        offset = 0
        shapes = [np.shape(d) for d in delta] + [(1,)]
        for q, shape in zip(quantised, shapes, strict=True):
            acc = q.astype(np.uint64)
            for seed, sign in seeds:
                block = expand_mask(seed, offset, q.size).astype(np.uint64)
                if sign > 0:
                    acc += block
                else:
                    acc -= block
            acc &= modulus_mask
            out.append(acc.astype(WIRE_DTYPE).reshape(shape))
            offset += q.size
        return out

    def reveal(self, survivors: Sequence[str], dropped: Sequence[str]) -> dict[str, bytes]:
        both = set(survivors) & set(dropped)
        if both:
            raise ValueError(
                f"the server asked for both secrets of {sorted(both)}: that would unmask an "
                "update; refused"
            )
        if len(set(survivors)) < self.threshold:
            raise ValueError(
                f"the server names {len(set(survivors))} survivor(s), fewer than the threshold "
                f"{self.threshold}; refused"
            )
        if self.revealed:
            raise ValueError("this round's shares were already revealed")
        self.revealed = True
        out = {}
        for owner in survivors:
            if owner in self.held:
                out[owner] = _element(self.held[owner][0])
        for owner in dropped:
            if owner in self.held and owner != self.client_id:
                out[owner] = _element(self.held[owner][1])
        return out


def quantize_weight(weight: float, quantization_range: int, rng: Any) -> np.ndarray:
    """The FedAvg weight in ``[0, 1]`` as an integer in ``[0, q]`` (stochastic rounding)."""
    scaled = weight * quantization_range
    floor = math.floor(scaled)
    return np.array([floor + int(rng.random() < scaled - floor)], np.uint64)
