"""The update-transform kind: pieces that act on a client's model update on its way to the model.

A federated job may name a *chain* of transforms (clipping, noising, quantisation,
sparsification...). The server announces the chain (names and parameters) in its ``welcome``
frame; every client builds the same chain from its own plugins and refuses to join when it lacks
a piece. An update here is always a *delta*: the client's trained weights minus the global
weights of the round, as a list of arrays shaped like the model.

Where each piece acts, in the chain's declared order ``t1, t2, ..., tn``:

* client, before sending: ``delta = t.encode(delta, ctx)`` for t1..tn; what tn returns is sent
  (its tensors must be exactly :meth:`BaseUpdateTransform.wire_specs` of the model's, folded
  through the chain);
* server, on receipt: ``t.decode(wire, ctx)`` for tn..t1 gives a model-shaped delta again, which
  is then checked like any update (dtypes, shapes, finite values, the distance bound);
* server, before aggregation: ``delta = t.before_aggregation(delta, num_samples, ctx)`` per
  update, in order t1..tn (server-side clipping);
* server, after aggregation: ``delta = t.after_aggregation(delta, ctx)`` on the aggregate's
  delta, in order t1..tn (central noise), then :meth:`~BaseUpdateTransform.end_round`.

A transform whose ``encode`` does anything sets ``client_side = True``: clients speaking
Sedna's own protocol cannot apply it, so the server refuses them in such jobs.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from sedna_core.algorithms._base import Algorithm
from sedna_core.algorithms.aggregation import TensorSpec

__all__ = ["BaseUpdateTransform", "TransformContext"]


@dataclass
class TransformContext:
    """What a transform may know about the round it acts in.

    Parameters
    ----------
    round_number
        The round (1-based).
    specs
        The global model's tensors.
    num_clients
        Updates expected this round (client side: 0, unknown).
    total_clients
        Clients in the job (the population sampled from; 0 where unknown).
    rng
        A generator with numpy's ``normal``/``random`` methods; None means each transform's own
        production generator (see its documentation). Tests inject a seeded one.
    metrics
        Client side: numbers the transforms add to the update's metrics (sent to the server).
        Server side, after aggregation: each client's metrics of this round, by client id.
    """

    round_number: int
    specs: Sequence[TensorSpec]
    num_clients: int = 0
    total_clients: int = 0
    rng: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)


class BaseUpdateTransform(Algorithm, abc.ABC):
    """One piece of a job's update-transform chain (see the module's documentation).

    Every method has an identity default, so a transform overrides only where it acts. A
    transform keeps state that outlives a round (an adaptive clipping norm, the privacy spent)
    in :meth:`state_dict`; client-side state (error-feedback residuals) stays on the client.
    """

    kind: ClassVar[str] = "update_transform"
    #: True when clients must apply :meth:`encode` (Sedna-protocol clients then cannot join)
    client_side: ClassVar[bool] = False
    #: True when the server reads this piece's wire tensors only through :meth:`decode`: when
    #: every client-side piece of a chain says so, an update travels as one byte tensor (one
    #: frame header instead of one per tensor, which weighs on small models). Leave False for
    #: pieces whose wire tensors the server combines undecoded (secure aggregation sums them).
    packable: ClassVar[bool] = False
    #: True when the piece may precede a secure aggregation although it overrides
    #: :meth:`before_aggregation`: that step is then skipped (the server sees only the sum), and
    #: the piece must stay correct without it (client-side clipping re-checked on the server)
    secure_compatible: ClassVar[bool] = False

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        """The tensors :meth:`encode` produces from tensors ``specs`` (default: the same).

        Parameters
        ----------
        specs
            The tensors :meth:`encode` is given.

        Returns
        -------
        list of TensorSpec
            What it sends instead; the server checks each update's frames against them.
        """
        return list(specs)

    def encode(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        """Client side: transform ``delta`` before it is sent (default: unchanged).

        Parameters
        ----------
        delta
            The update (or what the previous piece made of it).
        ctx
            The round; ``ctx.metrics`` collects numbers sent with the update.

        Returns
        -------
        list of numpy.ndarray
            Tensors exactly as :meth:`wire_specs` describes them.
        """
        return delta

    def decode(
        self, wire: list[np.ndarray], specs: Sequence[TensorSpec], ctx: TransformContext
    ) -> list[np.ndarray]:
        """Server side: undo :meth:`encode`'s format change (default: unchanged).

        Raise :class:`~sedna_core.errors.InvalidUpdateError` (or ``ValueError``) on values
        that cannot be decoded (an index out of range): the update is then rejected.

        Parameters
        ----------
        wire
            What :meth:`encode` sent, already checked against ``wire_specs(specs)`` (count,
            dtypes, shapes, finite values).
        specs
            The tensors :meth:`encode` was given (the model's, or the previous piece's
            :meth:`wire_specs`).
        ctx
            The round.

        Returns
        -------
        list of numpy.ndarray
            Tensors shaped and typed as ``specs``.
        """
        return wire

    def before_aggregation(
        self, delta: list[np.ndarray], num_samples: int, ctx: TransformContext
    ) -> list[np.ndarray]:
        """Server side, once per update before it is folded in (default: unchanged).

        Parameters
        ----------
        delta
            One client's decoded update.
        num_samples
            The samples it trained on.
        ctx
            The round; ``ctx.metrics`` holds that client's metrics.

        Returns
        -------
        list of numpy.ndarray
            The update to aggregate (e.g. clipped), model-shaped.
        """
        return delta

    def after_aggregation(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        """Server side, on the aggregate's delta from the global model (default: unchanged).

        Parameters
        ----------
        delta
            The new global weights minus the old.
        ctx
            The round.

        Returns
        -------
        list of numpy.ndarray
            The delta to apply (e.g. noised), model-shaped.
        """
        return delta

    def end_round(self, ctx: TransformContext) -> dict[str, float]:
        """Server side, once the round's model exists: update state and report.

        Parameters
        ----------
        ctx
            The round.

        Returns
        -------
        dict
            Numbers for the round's record, log line and ``/metrics`` (e.g. ``epsilon``);
            default: none.
        """
        return {}

    def budget_exhausted(self, next_round: int) -> str | None:
        """Server side, before round ``next_round``: whether a limit this transform enforces
        would be exceeded (the job then stops cleanly).

        Parameters
        ----------
        next_round
            The round about to start.

        Returns
        -------
        str or None
            A message saying which limit, or None (the default) to go on.
        """
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        """Server-side state that outlives a round.

        Returns
        -------
        dict
            Name -> array, checkpointed after each round; default: none.
        """
        return {}

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` returned.

        Parameters
        ----------
        state
            A checkpoint's entries for this transform.
        """

    def round_config(self) -> dict[str, Any]:
        """Server side: what clients need this round (e.g. an adaptive clipping norm).

        Returns
        -------
        dict
            JSON sent with each training round to :meth:`set_round_config`; default: none.
        """
        return {}

    def set_round_config(self, config: Mapping[str, Any]) -> None:
        """Client side: take what the server's :meth:`round_config` sent this round.

        Parameters
        ----------
        config
            The server's :meth:`round_config`.
        """

    def client_config(self) -> dict[str, Any]:
        """The parameters announced to clients in the ``welcome`` frame.

        Returns
        -------
        dict
            JSON parameters a client builds its own instance from; default: all of them.
        """
        return self.get_params()
