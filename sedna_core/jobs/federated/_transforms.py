"""A job's chain of update transforms (kind ``update_transform``), for the server and clients.

The server builds the chain from its configuration (``transforms=[...]``, ``AGG_TRANSFORMS``)
and announces it in ``welcome`` as ``[{"method": name, "param": {...}}, ...]``; each client
builds the same chain from its own plugins, or refuses to join. See
:mod:`sedna_core.algorithms.transform` for where each piece acts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import TensorSpec
from sedna_core.algorithms.transform import BaseUpdateTransform, TransformContext
from sedna_core.errors import ConfigError, InvalidUpdateError, JobError, SednaError

__all__ = ["TransformChain"]

#: most pieces a chain may have (the welcome frame carries them before anything is trained)
MAX_CHAIN = 16


class TransformChain:
    """The transforms of one job, in their declared order."""

    def __init__(self, transforms: Sequence[BaseUpdateTransform] = ()) -> None:
        self.transforms = list(transforms)

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def __len__(self) -> int:
        return len(self.transforms)

    @classmethod
    def build(cls, specs: Any, *, plugin_manager: Any = None) -> TransformChain:
        """The chain from a user's configuration: a list of specs (names, ``{"method":...,
        "param":...}``, instances or classes), a comma-separated string of names, or None."""
        from sedna_core.plugins import create_algorithm

        if specs is None or specs == "" or specs == []:
            return cls()
        if isinstance(specs, str) and not specs.lstrip().startswith(("{", "[")):
            specs = [s.strip() for s in specs.split(",") if s.strip()]
        elif isinstance(specs, str):
            import json

            try:
                specs = json.loads(specs)
            except ValueError as exc:
                raise ConfigError(
                    "transforms",
                    specs,
                    'comma-separated names (Int8,TopK) or a JSON list of names and {"method": '
                    f'..., "param": {{...}}}} objects (not valid JSON: {exc})',
                ) from None
        if isinstance(specs, Mapping) or not isinstance(specs, Sequence):
            specs = [specs]
        if len(specs) > MAX_CHAIN:
            raise ConfigError("transforms", f"{len(specs)} pieces", f"at most {MAX_CHAIN} pieces")
        made = []
        for spec in specs:
            algo = create_algorithm("update_transform", spec, plugin_manager=plugin_manager)
            assert isinstance(algo, BaseUpdateTransform)
            made.append(algo)
        return cls(made)

    @classmethod
    def from_welcome(cls, announced: Any, *, plugin_manager: Any = None) -> TransformChain:
        """The chain a server announced; :class:`JobError` naming what is missing otherwise."""
        if announced is None:
            return cls()
        if not isinstance(announced, list) or len(announced) > MAX_CHAIN:
            raise JobError("the server announced a malformed update-transform chain")
        made = []
        for i, spec in enumerate(announced):
            name = spec.get("method") if isinstance(spec, dict) else None
            try:
                algo = cls.build([spec], plugin_manager=plugin_manager).transforms[0]
            except (SednaError, ValueError, TypeError) as exc:
                raise JobError(
                    f"this client cannot apply the job's update transform {i + 1} "
                    f"({name!r}): {exc}. Install the plugin that provides it (for the "
                    "first-party ones: pip install sedna-plugin-transforms) and start again; "
                    "the client does not join a job whose updates it cannot transform."
                ) from exc
            made.append(algo)
        return cls(made)

    def announce(self) -> list[dict[str, Any]]:
        """The chain as the ``welcome`` frame carries it."""
        return [{"method": t.name, "param": t.client_config()} for t in self.transforms]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.transforms]

    @property
    def client_side(self) -> list[str]:
        """Names of the pieces clients must apply (Sedna-protocol clients cannot)."""
        return [t.name for t in self.transforms if t.client_side]

    @property
    def acts_on_server(self) -> bool:
        """Whether a piece changes updates or the aggregate on the server (clipping, noise);
        when none does, the server aggregates the decoded updates as they are."""
        base = BaseUpdateTransform
        return any(
            type(t).before_aggregation is not base.before_aggregation
            or type(t).after_aggregation is not base.after_aggregation
            for t in self.transforms
        )

    @property
    def packed(self) -> bool:
        """Whether updates travel as one byte tensor: some piece acts on clients and every such
        piece is ``packable`` (see :attr:`BaseUpdateTransform.packable`)."""
        acting = [t for t in self.transforms if t.client_side]
        return bool(acting) and all(t.packable for t in acting)

    @property
    def secure(self) -> Any:
        """The chain's secure-aggregation piece (a
        :class:`~sedna_core.algorithms.secure.BaseSecureAggregation`, always the last), or None."""
        from sedna_core.algorithms.secure import BaseSecureAggregation

        last = self.transforms[-1] if self.transforms else None
        return last if isinstance(last, BaseSecureAggregation) else None

    def check_secure(self, aggregator: Any, explicit: Mapping[str, Any]) -> None:
        """Refuse, with :class:`ConfigError`, what a secure aggregation cannot honour: its
        server sees only the sum, so nothing may need a single update (a server-side piece
        that acts on each one, a format the server decodes, a robust aggregator, a distance
        bound set by hand). ``explicit``: the server's settings given by the user."""
        from sedna_core.algorithms.aggregation import StreamingAggregation
        from sedna_core.algorithms.secure import BaseSecureAggregation

        secure = [t for t in self.transforms if isinstance(t, BaseSecureAggregation)]
        if not secure:
            return
        name = secure[0].name
        if len(secure) > 1 or self.transforms[-1] is not secure[0]:
            raise ConfigError(
                "transforms", self.names, f"{name} once, as the last piece (it masks the update)"
            )
        base = BaseUpdateTransform
        for t in self.transforms[:-1]:
            kind = type(t)
            if kind.wire_specs is not base.wire_specs or kind.decode is not base.decode:
                raise ConfigError(
                    "transforms",
                    self.names,
                    f"no piece that changes the update's format before {name} ({t.name}: the "
                    "server could not decode a sum of encoded updates); drop it",
                )
            if kind.before_aggregation is not base.before_aggregation and not t.secure_compatible:
                raise ConfigError(
                    "transforms",
                    self.names,
                    f"no server-side per-update piece with {name} ({t.name} must see each "
                    "update, which secure aggregation hides); use a client-side variant (e.g. "
                    "DifferentialPrivacyClientSideFixedClipping)",
                )
        if not isinstance(aggregator, StreamingAggregation) or aggregator.needs_all_updates:
            raise ConfigError(
                "aggregation",
                aggregator.name,
                f"a mean-based (streaming) aggregation such as FedAvg or FedAdam with {name}: "
                f"{aggregator.name} needs to see every update, which secure aggregation hides; "
                f"{name}'s clipping_range bounds each client's influence instead",
            )
        for key in ("max_update_ratio", "max_update_norm"):
            if explicit.get(key) is not None:
                raise ConfigError(
                    key,
                    explicit[key],
                    f"unset with {name}: the server cannot check one update's distance under "
                    "secure aggregation; clipping_range bounds each client's influence instead",
                )

    def piece_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        """The tensors the last piece's ``encode`` gives for a model of ``specs``."""
        out = list(specs)
        for t in self.transforms:
            out = t.wire_specs(out)
        return out

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        """The tensors an update carries on the wire for a model of ``specs``: the pieces'
        tensors, or one uint8 tensor holding them all when the chain is :attr:`packed`."""
        pieces = self.piece_specs(specs)
        if not self.packed:
            return pieces
        return [TensorSpec(None, np.uint8, (_layout(pieces)[1],))]

    # -- client side -----------------------------------------------------------------------
    def encode(
        self,
        weights: Sequence[np.ndarray],
        global_weights: Sequence[np.ndarray],
        ctx: TransformContext,
    ) -> list[np.ndarray]:
        """What a client sends: ``weights - global_weights`` through every ``encode``."""
        delta = [
            np.subtract(np.asarray(w), g, dtype=np.asarray(g).dtype)
            for w, g in zip(weights, global_weights, strict=True)
        ]
        for t in self.transforms:
            delta = t.encode(delta, ctx)
        return delta

    def encode_update(
        self,
        weights: Sequence[np.ndarray],
        global_weights: Sequence[np.ndarray],
        number: int,
        round_config: Any = None,
        secure_round: Any = None,
        num_samples: int = 1,
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """A client's trained ``weights`` as the chain sends them, and the numbers the pieces
        add to the update's metrics (e.g. an adaptive clipping's norm bit). ``round_config``
        is the round frame's ``transforms`` (one dict per piece, from :meth:`round_config`);
        a secure chain masks with ``secure_round`` and weighs by ``num_samples``."""
        if isinstance(round_config, list) and len(round_config) == len(self.transforms):
            for t, cfg in zip(self.transforms, round_config, strict=True):
                if isinstance(cfg, dict) and cfg:
                    t.set_round_config(cfg)
        specs = [TensorSpec(None, np.asarray(g).dtype, np.shape(g)) for g in global_weights]
        ctx = TransformContext(number, specs)
        if self.secure is not None:
            # the secure piece masks inside its protocol round (``secure_round``, one
            # client's secrets), after every other piece encoded the delta
            if secure_round is None:
                raise JobError(f"{self.secure.name} needs its protocol round to mask an update")
            inner = TransformChain(self.transforms[:-1])
            wire = secure_round.mask(inner.encode(weights, global_weights, ctx), num_samples)
        else:
            wire = self.encode(weights, global_weights, ctx)
        if self.packed:
            wire = [_pack(wire, self.piece_specs(specs))]
        numbers = {
            k: float(v)
            for k, v in ctx.metrics.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }
        return [np.ascontiguousarray(w) for w in wire], numbers

    # -- server side -----------------------------------------------------------------------
    def decode(self, wire: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        """The model-shaped delta of an update's wire tensors (every ``decode``, last first).

        Raises
        ------
        InvalidUpdateError
            A piece could not decode it (reason ``decode``).
        """
        inputs = [list(ctx.specs)]
        for t in self.transforms[:-1]:
            inputs.append(t.wire_specs(inputs[-1]))
        if self.packed:
            wire = _unpack(wire, self.piece_specs(ctx.specs))
        try:
            for t, specs in zip(reversed(self.transforms), reversed(inputs), strict=True):
                wire = t.decode(wire, specs, ctx)
        except InvalidUpdateError:
            raise
        except (ValueError, IndexError, TypeError) as exc:
            raise InvalidUpdateError("decode", f"the update could not be decoded: {exc}") from None
        return wire

    def round_config(self) -> list[dict[str, Any]]:
        """One dict per piece for this round's frame (see :meth:`encode_update`)."""
        return [t.round_config() for t in self.transforms]

    def before_aggregation(
        self, delta: list[np.ndarray], num_samples: int, ctx: TransformContext
    ) -> list[np.ndarray]:
        for t in self.transforms:
            delta = t.before_aggregation(delta, num_samples, ctx)
        return delta

    def after_aggregation(self, delta: list[np.ndarray], ctx: TransformContext) -> list[np.ndarray]:
        for t in self.transforms:
            delta = t.after_aggregation(delta, ctx)
        return delta

    def end_round(self, ctx: TransformContext) -> dict[str, float]:
        """Every piece's numbers for the round's record (later pieces win on equal keys)."""
        out: dict[str, float] = {}
        for t in self.transforms:
            out.update(t.end_round(ctx))
        return out

    def budget_exhausted(self, next_round: int) -> str | None:
        for t in self.transforms:
            message = t.budget_exhausted(next_round)
            if message:
                return message
        return None

    def state_dict(self) -> dict[str, np.ndarray]:
        return {
            f"transform{i}.{key}": value
            for i, t in enumerate(self.transforms)
            for key, value in t.state_dict().items()
        }

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for i, t in enumerate(self.transforms):
            prefix = f"transform{i}."
            mine = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            t.load_state_dict(mine)


# -- one byte tensor per update (chains whose pieces are all packable) ----------------------
def _layout(specs: Sequence[TensorSpec]) -> tuple[list[int], int]:
    """Byte offsets of ``specs`` laid end to end, each aligned to its itemsize (so unpacking
    gives aligned views without copies), and the total length."""
    offsets, end = [], 0
    for s in specs:
        size = s.dtype.itemsize
        end = -(-end // size) * size
        offsets.append(end)
        end += s.size * size
    return offsets, end


def _pack(tensors: Sequence[np.ndarray], specs: Sequence[TensorSpec]) -> np.ndarray:
    """The pieces' tensors as one little-endian byte string (client side)."""
    if len(tensors) != len(specs):
        raise ValueError(f"the transforms gave {len(tensors)} tensors, expected {len(specs)}")
    offsets, total = _layout(specs)
    out = np.zeros(total, np.uint8)
    for i, (t, s, at) in enumerate(zip(tensors, specs, offsets, strict=True)):
        t = np.asarray(t)
        if t.shape != s.shape:
            raise ValueError(
                f"transform output {i} has shape {list(t.shape)}, expected {list(s.shape)}"
            )
        data = np.ascontiguousarray(t, dtype=s.dtype.newbyteorder("<")).reshape(-1)
        out[at : at + data.nbytes] = data.view(np.uint8)
    return out


def _unpack(wire: Sequence[np.ndarray], specs: Sequence[TensorSpec]) -> list[np.ndarray]:
    """Server side: views of one update's byte tensor as the pieces' tensors."""
    offsets, total = _layout(specs)
    if len(wire) != 1 or wire[0].dtype != np.uint8 or wire[0].size != total:
        raise InvalidUpdateError("decode", f"a packed update must be {total} bytes in one tensor")
    flat = np.ascontiguousarray(wire[0]).reshape(-1)
    out = []
    for s, at in zip(specs, offsets, strict=True):
        data = flat[at : at + s.size * s.dtype.itemsize].view(s.dtype.newbyteorder("<"))
        out.append(data.astype(s.dtype, copy=False).reshape(s.shape))
    return out
