"""Secure aggregation (kind ``update_transform``): pieces whose updates the server can only sum.

A :class:`BaseSecureAggregation` is the last piece of a job's transform chain. Its updates are
masked on the clients; the server never decodes one alone. Each training round then runs extra
protocol stages around the upload (``docs/federated-learning.md``, "Secure aggregation"), which
the server's and the client's protocol code drive, and this class supplies the cryptography:

1. *keys*: each client sends the public keys of :meth:`SecureClientRound.public_keys`;
2. *shares*: each client gets its neighbours' keys and its index (``plan``
   chose the neighbours) and answers one ciphertext per neighbour and a commitment
   (:meth:`SecureClientRound.share_keys`); the server checks their shape and relays to every
   client the ciphertexts addressed to it, in a frame it builds itself;
3. *upload*: each client masks its delta (:meth:`SecureClientRound.mask`) and uploads it in
   chunks like any update; the server spools it unread;
4. *unmask*: the server names, to each client whose masked update arrived, which neighbours'
   updates arrived and which did not; the client reveals its shares of the first ones' self-mask
   seeds and of the second ones' mask keys (:meth:`SecureClientRound.reveal`); the server
   reconstructs them and removes the masks from the sum, block by block
   (:meth:`BaseSecureAggregation.unmask`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms.aggregation import TensorSpec, UpdateSource
from sedna_core.algorithms.transform import BaseUpdateTransform, TransformContext

__all__ = [
    "BaseSecureAggregation",
    "PeerKeys",
    "SecureClientRound",
    "SecurePlan",
    "UnmaskError",
    "UnmaskInput",
]


class UnmaskError(ValueError):
    """The sum could not be unmasked. ``culprits``: clients proven at fault (the shares of
    their secret agree with each other but not with what they committed to); the round's
    next attempt leaves them out, so one such client cannot fail every attempt."""

    def __init__(self, message: str, culprits: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.culprits = tuple(culprits)


@dataclass(frozen=True)
class PeerKeys:
    """One neighbour as a client learns it: its index in the round (a share's x-coordinate)
    and its public keys by name."""

    index: int
    keys: Mapping[str, bytes]


@dataclass(frozen=True)
class SecurePlan:
    """The server's plan for one round: each client's index and neighbours, and the threshold.

    ``error`` is set (and the rest empty) when the round cannot run with these clients (too
    few of them for the threshold, a modulus too small for their sum).
    """

    index: Mapping[str, int]
    neighbours: Mapping[str, Sequence[str]]
    threshold: int
    error: str = ""


@dataclass
class UnmaskInput:
    """What the server holds when it unmasks a round's sum (everything checked already)."""

    round_number: int
    attempt: int
    specs: Sequence[TensorSpec]
    plan: SecurePlan
    keys: Mapping[str, Mapping[str, bytes]]
    commitments: Mapping[str, bytes]
    #: the clients whose shares were relayed (they masked with each other where neighbours)
    shared: Sequence[str]
    #: client id -> its masked update (wire tensors, spooled)
    sources: Mapping[str, UpdateSource]
    #: holder -> owner -> the holder's share of the owner's secret (self-mask seed for owners
    #: in ``sources``, mask key for the others)
    reveals: Mapping[str, Mapping[str, bytes]]


class SecureClientRound(abc.ABC):
    """One client's secrets and state for one round (never leaves the client)."""

    @abc.abstractmethod
    def public_keys(self) -> dict[str, bytes]:
        """Stage 1: the public keys to announce, by name (``key_names``)."""

    @abc.abstractmethod
    def share_keys(
        self, index: int, threshold: int, peers: Mapping[str, PeerKeys]
    ) -> tuple[dict[str, bytes], bytes]:
        """Stage 2: ciphertexts of this client's shares, one per neighbour, and a commitment to
        its self-mask seed. ``ValueError`` when the neighbours' keys are unusable."""

    @abc.abstractmethod
    def receive_shares(self, ciphertexts: Mapping[str, bytes]) -> list[str]:
        """Stage 2, relayed: the shares neighbours sent; returns those that did not decrypt
        (they are skipped at unmasking; this client still masks with every sender)."""

    @abc.abstractmethod
    def mask(self, delta: list[np.ndarray], num_samples: int) -> list[np.ndarray]:
        """Stage 3: the masked update (:meth:`BaseUpdateTransform.wire_specs` of the delta)."""

    @abc.abstractmethod
    def reveal(self, survivors: Sequence[str], dropped: Sequence[str]) -> dict[str, bytes]:
        """Stage 4: this client's shares of the survivors' seeds and of the dropped ones' mask
        keys. ``ValueError`` when the request would expose an update (an owner named in both
        lists, fewer survivors than the threshold)."""


class BaseSecureAggregation(BaseUpdateTransform):
    """A transform the server can only sum (see the module's documentation).

    Jobs with one refuse what needs to see single updates: a server-side piece acting on each
    update, a robust aggregator, a distance bound set by hand.
    """

    client_side: ClassVar[bool] = True
    #: names of the public keys each client announces, and their length in bytes
    key_names: ClassVar[tuple[str, ...]] = ()
    key_bytes: ClassVar[int] = 32
    #: largest ciphertext (one neighbour's shares) and largest revealed share, in bytes
    max_ciphertext_bytes: ClassVar[int] = 1024
    max_share_bytes: ClassVar[int] = 256

    def decode(
        self, wire: list[np.ndarray], specs: Sequence[TensorSpec], ctx: TransformContext
    ) -> list[np.ndarray]:
        raise ValueError("a securely aggregated update cannot be decoded alone; only the sum")

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        raise RuntimeError(
            f"{self.name} masks updates inside its protocol stages (SecureClientRound.mask); "
            "it cannot encode an update on its own"
        )

    def check_public_keys(self, keys: Mapping[str, bytes]) -> None:
        """Stage 1, on the server: ``ValueError`` when a client's announced keys (each
        ``key_bytes`` long) are unusable, before they reach its neighbours (an unusable key
        would break each neighbour's round). The default accepts any bytes."""

    @abc.abstractmethod
    def client_round(self, round_number: int, attempt: int, client_id: str) -> SecureClientRound:
        """A client's fresh secrets for one round."""

    @abc.abstractmethod
    def plan(self, clients: Sequence[str], seed: Any) -> SecurePlan:
        """Indices, neighbours and threshold for the clients that announced keys."""

    @abc.abstractmethod
    def unmask(self, job: UnmaskInput) -> list[np.ndarray]:
        """The weighted mean of the surviving updates' deltas, model-shaped (``job.specs``).

        Raises ``ValueError`` naming the reason when the sum cannot be unmasked (too few
        shares, shares inconsistent with the commitments), :class:`UnmaskError` to name the
        clients at fault.
        """
