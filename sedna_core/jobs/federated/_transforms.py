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
from sedna_core.errors import InvalidUpdateError, JobError, SednaError

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

            specs = json.loads(specs)
        if isinstance(specs, Mapping) or not isinstance(specs, Sequence):
            specs = [specs]
        if len(specs) > MAX_CHAIN:
            raise ValueError(f"a transform chain has at most {MAX_CHAIN} pieces, got {len(specs)}")
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

    def wire_specs(self, specs: Sequence[TensorSpec]) -> list[TensorSpec]:
        """The tensors an update carries on the wire for a model of ``specs``."""
        out = list(specs)
        for t in self.transforms:
            out = t.wire_specs(out)
        return out

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
    ) -> tuple[list[np.ndarray], dict[str, float]]:
        """A client's trained ``weights`` as the chain sends them, and the numbers the pieces
        add to the update's metrics (e.g. an adaptive clipping's norm bit). ``round_config``
        is the round frame's ``transforms`` (one dict per piece, from :meth:`round_config`)."""
        if isinstance(round_config, list) and len(round_config) == len(self.transforms):
            for t, cfg in zip(self.transforms, round_config, strict=True):
                if isinstance(cfg, dict) and cfg:
                    t.set_round_config(cfg)
        specs = [TensorSpec(None, np.asarray(g).dtype, np.shape(g)) for g in global_weights]
        ctx = TransformContext(number, specs)
        wire = self.encode(weights, global_weights, ctx)
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
