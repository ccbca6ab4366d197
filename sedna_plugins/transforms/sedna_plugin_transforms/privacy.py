"""Differential privacy for federated updates: central DP (fixed or adaptive clipping, on the
server or on the clients: Flower's four variants) and local DP, with privacy accounting.

Central DP (McMahan et al. 2018, "DP-FedAvg"): each client's delta is clipped to L2 norm ``C``,
the clipped deltas are averaged, and Gaussian noise of standard deviation ``z * C / n`` (``z``
the noise multiplier, ``n`` the sampled clients) is added to the average. Adaptive clipping
(Andrew et al. 2021) moves ``C`` each round towards the ``target_clipped_quantile`` quantile of
the update norms, from a noised count of the updates that were not clipped.

Accounting: the rounds are composed as sampled Gaussian mechanisms with an RDP accountant
(``dp_accounting.rdp.RdpAccountant``, Google's library), sampling rate ``q`` = the round's
clients over the clients connected (or ``sampling_rate``). The accountant assumes Poisson
sampling; the server samples a fixed share, the usual approximation (as in Flower's and
TensorFlow Federated's documentation). The guarantee is for a user-level neighbour (one client
added or removed) and holds with the clients weighted equally: with FedAvg weighted by
``num_samples`` one client's weight is not ``1/n``, so give clients equal ``num_samples`` or
use an unweighted aggregation when the guarantee matters.

Noise: in production from the operating system's CSPRNG (``os.urandom``, turned into Gaussian
values by the Box-Muller transform, see :class:`SecureGaussian`); with ``seed`` set (tests,
benchmarks) from numpy's PCG64 seeded with it, which is reproducible and **not** secret.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms import BaseUpdateTransform, TransformContext

__all__ = [
    "DifferentialPrivacyClientSideAdaptiveClipping",
    "DifferentialPrivacyClientSideFixedClipping",
    "DifferentialPrivacyServerSideAdaptiveClipping",
    "DifferentialPrivacyServerSideFixedClipping",
    "LocalDP",
    "SecureGaussian",
    "clip_inplace",
    "epsilon_of",
    "l2_norm",
]

#: the metric a client-side adaptive clipping sends: 1 when its update was not clipped
NORM_BIT = "_dp_unclipped"


class SecureGaussian:
    """Gaussian noise from the operating system's CSPRNG (``os.urandom``).

    Uniform doubles are made from 53 random bits each, then paired by the Box-Muller transform;
    numpy only does arithmetic on them, so the noise is as unpredictable as the kernel's
    generator. (It is slower than numpy's generators: about 100 MB/s of noise.)
    """

    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> Any:
        shape = () if size is None else (size,) if isinstance(size, int) else tuple(size)
        n = math.prod(shape)
        pairs = (n + 1) // 2
        bits = np.frombuffer(os.urandom(16 * pairs), dtype=np.uint64) >> np.uint64(11)
        u = (bits.astype(np.float64) + 0.5) * (1.0 / (1 << 53))  # in (0, 1): log is finite
        u1, u2 = u[:pairs], u[pairs:]
        radius = np.sqrt(-2.0 * np.log(u1))
        z = np.concatenate([radius * np.cos(2 * np.pi * u2), radius * np.sin(2 * np.pi * u2)])
        out = loc + scale * z[:n].reshape(shape)
        return float(out) if size is None else out


def _noise_source(ctx: TransformContext, seed: int | None) -> Any:
    if ctx.rng is not None:
        return ctx.rng
    if seed is not None:
        return np.random.default_rng([seed, ctx.round_number])
    return SecureGaussian()


def l2_norm(arrays: Sequence[np.ndarray]) -> float:
    """The L2 norm of all ``arrays`` together (as one flat vector), in float64."""
    return math.sqrt(sum(float(np.dot(a.reshape(-1), a.reshape(-1))) for a in arrays if a.size))


def clip_inplace(arrays: list[np.ndarray], clipping_norm: float) -> bool:
    """Scale ``arrays`` (in place) to L2 norm at most ``clipping_norm``; True when they were
    not clipped (their norm was within it)."""
    norm = l2_norm(arrays)
    if norm <= clipping_norm:
        return True
    factor = clipping_norm / norm
    for a in arrays:
        a *= a.dtype.type(factor)
    return False


def _add_noise(delta: list[np.ndarray], stddev: float, source: Any) -> list[np.ndarray]:
    if stddev <= 0:
        return delta
    return [
        (d + source.normal(0.0, stddev, d.shape)).astype(d.dtype) if d.dtype.kind == "f" else d
        for d in delta
    ]


def epsilon_of(
    noise_multiplier: float | Sequence[float],
    sampling_rate: float | Sequence[float],
    rounds: int = 1,
    delta: float = 1e-5,
) -> float:
    """ε of ``rounds`` sampled Gaussian mechanisms at ``delta`` (RDP accountant).

    Parameters
    ----------
    noise_multiplier, sampling_rate
        One value for every round, or one per round (sequences of equal length; ``rounds`` is
        then ignored).
    rounds
        How many rounds, with scalar parameters.
    delta
        The δ of the guarantee.

    Returns
    -------
    float
        ε (``inf`` when any round has no noise).
    """
    import logging

    import dp_accounting

    # dp_accounting logs (through absl) each RDP order it cannot evaluate; those orders are
    # simply left out of the minimum, so the lines are noise to a federated job's log
    logging.getLogger("absl").setLevel(logging.ERROR)

    if isinstance(noise_multiplier, Sequence) or isinstance(sampling_rate, Sequence):
        zs = list(noise_multiplier) if isinstance(noise_multiplier, Sequence) else []
        qs = list(sampling_rate) if isinstance(sampling_rate, Sequence) else []
        n = max(len(zs), len(qs))
        zs = zs or [float(noise_multiplier)] * n  # type: ignore[arg-type]
        qs = qs or [float(sampling_rate)] * n  # type: ignore[arg-type]
        events: dict[tuple[float, float], int] = {}
        for z, q in zip(zs, qs, strict=True):
            events[(float(z), float(q))] = events.get((float(z), float(q)), 0) + 1
    else:
        events = {(float(noise_multiplier), float(sampling_rate)): int(rounds)}
    if not events or all(count == 0 for count in events.values()):
        return 0.0
    if any(z <= 0 for z, _ in events):
        return math.inf
    # RDP composes by addition: each (z, q) round's RDP curve is computed once per process
    # (a sampled Gaussian's takes about 0.1-1 s; a job asks for ε after every round)
    orders, total = None, None
    for (z, q), count in events.items():
        orders, rdp = _rdp_of(z, q)
        total = count * rdp if total is None else total + count * rdp
    return float(dp_accounting.rdp.rdp_privacy_accountant.compute_epsilon(orders, total, delta)[0])


@functools.lru_cache(maxsize=256)
def _rdp_of(noise_multiplier: float, sampling_rate: float) -> tuple[np.ndarray, np.ndarray]:
    """The RDP orders and values of one round (a Poisson-sampled Gaussian mechanism)."""
    import dp_accounting

    accountant = dp_accounting.rdp.RdpAccountant()
    event: Any = dp_accounting.GaussianDpEvent(noise_multiplier)
    if sampling_rate < 1:
        event = dp_accounting.PoissonSampledDpEvent(sampling_rate, event)
    accountant.compose(event, 1)
    orders, rdp = accountant.orders, accountant.rdp
    orders.flags.writeable = rdp.flags.writeable = False  # shared by every later call
    return orders, rdp


class _CentralDP(BaseUpdateTransform):
    """What the four central-DP variants share: noise after aggregation and accounting."""

    #: whether clients clip (and the server only re-applies the bound)
    clip_on_client: ClassVar[bool] = False
    packable: ClassVar[bool] = True

    def _init_accounting(
        self,
        delta: float,
        max_epsilon: float,
        sampling_rate: float,
        seed: int | None,
    ) -> None:
        if not 0 < delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {delta!r}")
        if max_epsilon < 0:
            raise ValueError(f"max_epsilon must be >= 0 (0: no limit), got {max_epsilon!r}")
        if not 0 <= sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be in [0, 1] (0: measured), got {sampling_rate}")
        self.delta = delta
        self.max_epsilon = max_epsilon
        self.sampling_rate = sampling_rate
        self.seed = seed
        #: (noise multiplier, sampling rate) of each round so far
        self._events: list[tuple[float, float]] = []

    # the noise multiplier the accountant uses (adaptive clipping: the user's, see Andrew et al.)
    def _accounted_multiplier(self) -> float:
        return float(self.noise_multiplier)  # type: ignore[attr-defined]

    def _noise_multiplier_for_updates(self) -> float:
        return float(self.noise_multiplier)  # type: ignore[attr-defined]

    def _current_clip(self) -> float:
        return float(self.clipping_norm)  # type: ignore[attr-defined]

    def _n(self, ctx: TransformContext) -> int:
        configured = int(getattr(self, "num_sampled_clients", 0) or 0)
        return configured or max(1, ctx.num_clients)

    def _q(self, ctx: TransformContext) -> float:
        if self.sampling_rate:
            return float(self.sampling_rate)
        if ctx.total_clients and ctx.num_clients:
            return min(1.0, ctx.num_clients / ctx.total_clients)
        return 1.0

    def client_config(self) -> dict[str, Any]:
        # the seed never leaves the server (clients draw nothing from it)
        return {k: v for k, v in self.get_params().items() if k != "seed"}

    def before_aggregation(
        self, delta: list[np.ndarray], num_samples: int, ctx: TransformContext
    ) -> list[np.ndarray]:
        # Server-side clipping; with client-side clipping it re-applies the bound, so a client
        # that did not clip cannot break the guarantee (a no-op for those that did).
        delta = [np.array(d, dtype=d.dtype, copy=True) for d in delta]
        self._note_norm_bit(clip_inplace(delta, self._current_clip()), ctx)
        return delta

    def _note_norm_bit(self, unclipped: bool, ctx: TransformContext) -> None:
        pass

    def after_aggregation(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        stddev = self._noise_multiplier_for_updates() * self._current_clip() / self._n(ctx)
        self._stddev = stddev
        return _add_noise(delta, stddev, _noise_source(ctx, self.seed))

    def end_round(self, ctx: TransformContext) -> dict[str, float]:
        z, q = self._accounted_multiplier(), self._q(ctx)
        self._events.append((z, q))
        zs, qs = [e[0] for e in self._events], [e[1] for e in self._events]
        numbers = {
            "epsilon": epsilon_of(zs, qs, delta=self.delta),
            "round_epsilon": epsilon_of(z, q, 1, self.delta),
            "delta": self.delta,
            "noise_stddev": getattr(self, "_stddev", 0.0),
            "clipping_norm": self._current_clip(),
        }
        numbers.update(self._end_round_clip(ctx))
        return {k: v for k, v in numbers.items() if math.isfinite(v)} | (
            {"epsilon_infinite": 1.0} if not math.isfinite(numbers["epsilon"]) else {}
        )

    def _end_round_clip(self, ctx: TransformContext) -> dict[str, float]:
        return {}

    def budget_exhausted(self, next_round: int) -> str | None:
        if not self.max_epsilon:
            return None
        z = self._accounted_multiplier()
        q = self._events[-1][1] if self._events else (self.sampling_rate or 1.0)
        events = [*self._events, (z, q)]
        spent = epsilon_of([e[0] for e in events], [e[1] for e in events], delta=self.delta)
        if spent > self.max_epsilon:
            return (
                f"the privacy budget epsilon={self.max_epsilon:g} (delta={self.delta:g}) would be "
                f"exceeded by round {next_round} (epsilon would be {spent:.4g}); the job stops "
                "with the model of the last round within the budget"
            )
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"events": np.asarray(self._events, dtype=np.float64).reshape(-1, 2)}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        events = state.get("events")
        if events is not None:
            self._events = [(float(z), float(q)) for z, q in np.asarray(events).reshape(-1, 2)]


class DifferentialPrivacyServerSideFixedClipping(_CentralDP):
    """Central DP, the server clips each update to ``clipping_norm`` (Flower's namesake).

    Parameters
    ----------
    noise_multiplier
        ``z``: the noise's standard deviation is ``z * clipping_norm / n``.
    clipping_norm
        ``C``: the L2 bound of each client's delta.
    num_sampled_clients
        ``n``; 0 uses the round's number of updates.
    delta
        δ of the reported (ε, δ).
    max_epsilon
        Stop the job before a round that would take ε beyond this (0: no limit).
    sampling_rate
        ``q`` for the accountant; 0 uses the round's clients over the clients connected.
    seed
        Seed of the noise for reproducible experiments (None: the OS CSPRNG, see the module).
    """

    name: ClassVar[str] = "DifferentialPrivacyServerSideFixedClipping"

    def __init__(
        self,
        noise_multiplier: float = 1.0,
        clipping_norm: float = 1.0,
        num_sampled_clients: int = 0,
        delta: float = 1e-5,
        max_epsilon: float = 0.0,
        sampling_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier!r}")
        if clipping_norm <= 0:
            raise ValueError(f"clipping_norm must be > 0, got {clipping_norm!r}")
        self.noise_multiplier = noise_multiplier
        self.clipping_norm = clipping_norm
        self.num_sampled_clients = num_sampled_clients
        self._init_accounting(delta, max_epsilon, sampling_rate, seed)


class DifferentialPrivacyClientSideFixedClipping(DifferentialPrivacyServerSideFixedClipping):
    """Central DP, each client clips its own delta to ``clipping_norm`` before sending (Flower's
    namesake with its ``fixedclipping_mod``); the server adds the noise. Parameters as
    :class:`DifferentialPrivacyServerSideFixedClipping`."""

    name: ClassVar[str] = "DifferentialPrivacyClientSideFixedClipping"
    client_side: ClassVar[bool] = True
    #: clients clip, so under secure aggregation (no per-update step) the noise still fits
    secure_compatible: ClassVar[bool] = True

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        delta = [np.array(d, copy=True) for d in delta]
        clip_inplace(delta, self.clipping_norm)
        return delta


class DifferentialPrivacyServerSideAdaptiveClipping(_CentralDP):
    """Central DP with adaptive clipping (Andrew et al. 2021), the server clips.

    Each round the clipping norm ``C`` moves towards the ``target_clipped_quantile`` quantile of
    the update norms: ``C *= exp(-clip_norm_lr * (b - target))`` with ``b`` the noised share of
    updates that were *not* clipped (noise ``clipped_count_stddev`` on the count, default
    ``n / 20``), as in the paper. (Flower 1.x counts the *clipped* updates in this formula, so
    its ``C`` moves the other way; the round's aggregate is the same.) The noise on the model
    uses the multiplier ``(z**-2 - (2 * clipped_count_stddev)**-2) ** -0.5`` so that model and
    count together cost what ``z`` alone would (the paper's Theorem 1); the accountant uses ``z``.

    Parameters
    ----------
    noise_multiplier
        ``z`` of the whole mechanism.
    num_sampled_clients
        ``n``; 0 uses the round's number of updates.
    initial_clipping_norm, target_clipped_quantile, clip_norm_lr, clipped_count_stddev
        As in Flower and the paper (``clipped_count_stddev`` 0 means ``n / 20``).
    delta, max_epsilon, sampling_rate, seed
        As for :class:`DifferentialPrivacyServerSideFixedClipping`.
    """

    name: ClassVar[str] = "DifferentialPrivacyServerSideAdaptiveClipping"

    def __init__(
        self,
        noise_multiplier: float = 1.0,
        num_sampled_clients: int = 0,
        initial_clipping_norm: float = 0.1,
        target_clipped_quantile: float = 0.5,
        clip_norm_lr: float = 0.2,
        clipped_count_stddev: float = 0.0,
        delta: float = 1e-5,
        max_epsilon: float = 0.0,
        sampling_rate: float = 0.0,
        seed: int | None = None,
    ) -> None:
        if noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {noise_multiplier!r}")
        if initial_clipping_norm <= 0:
            raise ValueError(f"initial_clipping_norm must be > 0, got {initial_clipping_norm!r}")
        if not 0 <= target_clipped_quantile <= 1:
            raise ValueError(
                f"target_clipped_quantile must be in [0, 1], got {target_clipped_quantile}"
            )
        if clip_norm_lr <= 0:
            raise ValueError(f"clip_norm_lr must be > 0, got {clip_norm_lr!r}")
        if clipped_count_stddev < 0:
            raise ValueError(f"clipped_count_stddev must be >= 0, got {clipped_count_stddev!r}")
        self.noise_multiplier = noise_multiplier
        self.num_sampled_clients = num_sampled_clients
        self.initial_clipping_norm = initial_clipping_norm
        self.target_clipped_quantile = target_clipped_quantile
        self.clip_norm_lr = clip_norm_lr
        self.clipped_count_stddev = clipped_count_stddev
        self._init_accounting(delta, max_epsilon, sampling_rate, seed)
        self.clipping_norm = initial_clipping_norm
        self._unclipped = 0
        self._counted = 0
        if noise_multiplier > 0:
            if not (clipped_count_stddev or num_sampled_clients):
                raise ValueError(
                    "adaptive clipping with noise needs num_sampled_clients (the count's noise "
                    "is then num_sampled_clients / 20, as in Flower) or clipped_count_stddev"
                )
            self._noise_multiplier_for_updates()  # checks z < 2 * clipped_count_stddev now

    @classmethod
    def conformance_examples(cls) -> list[dict[str, Any]]:
        return [
            {"noise_multiplier": 0.5, "clipped_count_stddev": 1.0, "seed": 0},
            {"noise_multiplier": 1.0, "num_sampled_clients": 100, "seed": 1},
            {"noise_multiplier": 0.0},
        ]

    def _count_stddev(self, n: int) -> float:
        if self.clipped_count_stddev:
            return float(self.clipped_count_stddev)
        return n / 20 if self.noise_multiplier > 0 else 0.0

    def _noise_multiplier_for_updates(self) -> float:
        z = float(self.noise_multiplier)
        if z <= 0:
            return 0.0
        n = int(self.num_sampled_clients or max(1, self._counted))
        sigma_b = self._count_stddev(n)
        if z >= 2 * sigma_b:
            raise ValueError(
                f"noise_multiplier {z} needs clipped_count_stddev above {z / 2} (it is "
                f"{sigma_b}; by default num_sampled_clients / 20): raise clipped_count_stddev "
                "or num_sampled_clients, or lower noise_multiplier"
            )
        return float((z**-2 - (2 * sigma_b) ** -2) ** -0.5)

    def _note_norm_bit(self, unclipped: bool, ctx: TransformContext) -> None:
        self._unclipped += int(unclipped)
        self._counted += 1

    def _end_round_clip(self, ctx: TransformContext) -> dict[str, float]:
        counted = max(1, self._counted)
        source = _noise_source(ctx, self.seed)
        stddev = self._count_stddev(counted)
        noisy = self._unclipped + (float(source.normal(0.0, stddev)) if stddev > 0 else 0.0)
        self.clipping_norm *= math.exp(
            -self.clip_norm_lr * (noisy / counted - self.target_clipped_quantile)
        )
        self._unclipped = self._counted = 0
        return {"next_clipping_norm": self.clipping_norm}

    def round_config(self) -> dict[str, Any]:
        return {"clipping_norm": self.clipping_norm}

    def set_round_config(self, config: Mapping[str, Any]) -> None:
        value = config.get("clipping_norm")
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            self.clipping_norm = float(value)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {**super().state_dict(), "clipping_norm": np.asarray(self.clipping_norm)}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        super().load_state_dict(state)
        if "clipping_norm" in state:
            self.clipping_norm = float(np.asarray(state["clipping_norm"]))


class DifferentialPrivacyClientSideAdaptiveClipping(DifferentialPrivacyServerSideAdaptiveClipping):
    """Adaptive clipping done by the clients (Flower's namesake with ``adaptiveclipping_mod``):
    each client clips at the round's norm (sent with the round) and reports whether its update
    was within it; the server noises the count and the model. Parameters as
    :class:`DifferentialPrivacyServerSideAdaptiveClipping`."""

    name: ClassVar[str] = "DifferentialPrivacyClientSideAdaptiveClipping"
    client_side: ClassVar[bool] = True

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        delta = [np.array(d, copy=True) for d in delta]
        ctx.metrics[NORM_BIT] = 1.0 if clip_inplace(delta, self.clipping_norm) else 0.0
        return delta

    def before_aggregation(
        self, delta: list[np.ndarray], num_samples: int, ctx: TransformContext
    ) -> list[np.ndarray]:
        delta = [np.array(d, dtype=d.dtype, copy=True) for d in delta]
        within = clip_inplace(delta, self.clipping_norm)
        # the client's own bit (about its unclipped update) when it sent one
        bit = ctx.metrics.get(NORM_BIT)
        self._note_norm_bit(bool(bit) if bit in (0.0, 1.0) else within, ctx)
        return delta


class LocalDP(BaseUpdateTransform):
    """Local DP: each client clips its delta to ``clipping_norm`` and adds Gaussian noise of
    standard deviation ``clipping_norm * sqrt(2 ln(1.25 / delta)) / epsilon`` (the Gaussian
    mechanism; Flower's ``LocalDpMod``), so every update the server sees is (ε, δ)-DP on its
    own. Noise from the client's OS CSPRNG. The server reports the per-round (ε, δ); over
    rounds they compose (at most ``rounds * epsilon`` by basic composition).

    Parameters
    ----------
    clipping_norm
        L2 bound of the delta (the mechanism's sensitivity).
    epsilon, delta
        The per-round, per-client guarantee (``epsilon`` below 1 for the classic bound).
    """

    name: ClassVar[str] = "LocalDP"
    client_side: ClassVar[bool] = True
    packable: ClassVar[bool] = True

    def __init__(
        self, clipping_norm: float = 1.0, epsilon: float = 1.0, delta: float = 1e-5
    ) -> None:
        if clipping_norm <= 0 or epsilon <= 0 or not 0 < delta < 1:
            raise ValueError(
                "LocalDP needs clipping_norm > 0, epsilon > 0 and 0 < delta < 1, got "
                f"{clipping_norm!r}, {epsilon!r}, {delta!r}"
            )
        self.clipping_norm = clipping_norm
        self.epsilon = epsilon
        self.delta = delta

    @property
    def stddev(self) -> float:
        return self.clipping_norm * math.sqrt(2 * math.log(1.25 / self.delta)) / self.epsilon

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        delta = [np.array(d, copy=True) for d in delta]
        clip_inplace(delta, self.clipping_norm)
        source = ctx.rng if ctx.rng is not None else SecureGaussian()
        return _add_noise(delta, self.stddev, source)

    def end_round(self, ctx: TransformContext) -> dict[str, float]:
        return {"local_epsilon": self.epsilon, "local_delta": self.delta}
