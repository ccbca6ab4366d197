"""Settings of federated learning: the client job and the aggregation server.

Explicit arguments win, then Sedna's environment variables (``AGG_PROTOCOL``/``AGG_IP``/``AGG_PORT``
for clients; ``AGG_BIND_IP``/``AGG_BIND_PORT`` and the example's ``aggregation_algorithm``,
``exit_round``, ``participants_count`` for the server), then the defaults below.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from sedna_core.config._common import JobConfig, ServiceConfig
from sedna_core.config._settings import (
    setting,
    to_bool,
    to_float,
    to_int,
    to_json,
    to_port,
    to_positive_float,
    to_positive_int,
)

__all__ = ["AggregationServerConfig", "FederatedConfig", "to_client_tokens", "to_fraction"]

DEFAULT_AGG_PORT = 7363
DEFAULT_CHUNK_BYTES = 1 << 20


def _accepts(text: str) -> Any:
    def mark(fn: Any) -> Any:
        fn.accepted = text
        return fn

    return mark


@_accepts("a number in (0, 1]")
def to_fraction(raw: str) -> float:
    value = float(raw.strip())
    if not 0 < value <= 1:
        raise ValueError(raw)
    return value


@_accepts("an integer >= 0")
def to_count(raw: str) -> int:
    value = int(raw.strip())
    if value < 0:
        raise ValueError(raw)
    return value


@_accepts("ws or wss")
def to_ws_scheme(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("ws", "wss"):
        raise ValueError(raw)
    return value


@_accepts("a JSON object of client id to token, or @FILE holding one")
def to_client_tokens(raw: str) -> dict[str, str]:
    text = raw.strip()
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    value = json.loads(text)
    return _check_tokens(value)


def _check_tokens(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise ValueError("client tokens must map client ids to non-empty token strings")
    return dict(value)


@attrs.frozen
class FederatedConfig(JobConfig):
    """A federated-learning client (``FederatedLearning``).

    The client id is ``WORKER_NAME`` (else the job name); the token is ``SEDNA_TOKEN``.
    """

    agg_protocol: str = setting("AGG_PROTOCOL", default="ws", convert=to_ws_scheme)
    agg_ip: str = setting("AGG_IP", default="127.0.0.1")
    agg_port: int = setting("AGG_PORT", default=DEFAULT_AGG_PORT, convert=to_port)
    #: seconds to open the connection (Sedna's CONNECT_TIMEOUT)
    connect_timeout: float = setting("CONNECT_TIMEOUT", default=30.0, convert=to_positive_float)
    #: longest silence from the server before the client gives up on the connection
    receive_timeout: float = setting(
        "AGG_RECEIVE_TIMEOUT", default=900.0, convert=to_positive_float
    )
    #: websocket ping interval (a dead peer is noticed within about this long)
    heartbeat: float = setting("AGG_HEARTBEAT", default=20.0, convert=to_positive_float)
    #: reconnections in a row before the client fails (each waits longer: back-off)
    reconnect_attempts: int = setting("AGG_RECONNECT_ATTEMPTS", default=8, convert=to_count)
    reconnect_backoff: float = setting(
        "AGG_RECONNECT_BACKOFF", default=0.5, convert=to_positive_float
    )

    @property
    def address(self) -> str:
        """``ws(s)://AGG_IP:AGG_PORT``."""
        host = f"[{self.agg_ip}]" if ":" in self.agg_ip else self.agg_ip
        return f"{self.agg_protocol}://{host}:{self.agg_port}"


@attrs.frozen
class AggregationServerConfig(ServiceConfig):
    """The aggregation server (``AggregationServer``, ``sedna serve aggregation``)."""

    host: str = setting("AGG_BIND_IP", default="127.0.0.1")
    port: int = setting("AGG_BIND_PORT", default=DEFAULT_AGG_PORT, convert=to_port)
    job_name: str = setting(("JOB_NAME", "SERVICE_NAME"), default="sedna")
    #: algorithm name or ``{"method": ..., "param": {...}}`` (Sedna's example variable)
    aggregation: Any = setting(  # noqa: RUF009  (attrs field; instances are frozen)
        ("AGGREGATION_ALGORITHM", "AGG_ALGORITHM"), default="FedAvg", convert=str
    )
    aggregation_params: Any = setting("AGG_PARAMETERS", convert=to_json)  # noqa: RUF009
    #: training rounds in the job
    exit_round: int = setting("EXIT_ROUND", default=1, convert=to_positive_int)
    #: clients to wait for before the first round (at most ``round_deadline``); later rounds
    #: start with the clients connected, given a quorum
    participants_count: int = setting("PARTICIPANTS_COUNT", default=1, convert=to_positive_int)
    #: valid updates a round needs; None means participants_count
    quorum: int | None = setting("AGG_QUORUM", convert=to_positive_int)
    #: seconds a round may take (waiting for clients included) before it closes
    round_deadline: float = setting("AGG_ROUND_DEADLINE", default=600.0, convert=to_positive_float)
    #: fraction of connected clients asked to train each round (seeded selection)
    fraction: float = setting("AGG_FRACTION", default=1.0, convert=to_fraction)
    #: federated evaluation after every N training rounds (0: never)
    evaluate_every: int = setting("AGG_EVALUATE_EVERY", default=0, convert=to_count)
    evaluate_fraction: float = setting("AGG_EVALUATE_FRACTION", default=1.0, convert=to_fraction)
    seed: int = setting("AGG_SEED", default=0, convert=to_int)
    #: attempts of a round after the first that missed its quorum, before the job fails
    max_retries: int = setting("AGG_MAX_RETRIES", default=3, convert=to_count)
    client_tokens: dict[str, str] | None = setting(  # noqa: RUF009
        "AGG_CLIENT_TOKENS", convert=to_client_tokens
    )
    #: artifact store for per-round checkpoints (None: no checkpoints, no resume)
    checkpoint_dir: str | None = setting("AGG_CHECKPOINT_DIR")
    #: where incoming updates are spooled while they are checked (None: the system temp dir)
    spool_dir: str | None = setting("AGG_SPOOL_DIR")
    chunk_bytes: int = setting(
        "AGG_CHUNK_BYTES", default=DEFAULT_CHUNK_BYTES, convert=to_positive_int
    )
    #: largest model accepted when the server has no initial weights and learns them
    max_model_bytes: int = setting("AGG_MAX_MODEL_BYTES", default=64 << 30, convert=to_positive_int)
    heartbeat: float = setting("AGG_HEARTBEAT", default=20.0, convert=to_positive_float)
    #: largest ``num_samples`` one update may claim (a larger claim would own the average)
    max_num_samples: int = setting(
        "AGG_MAX_NUM_SAMPLES", default=1_000_000_000, convert=to_positive_int
    )
    #: an update is refused when ||update - global||_2 > max_update_ratio * ||global||_2 +
    #: max_update_norm (all tensors together)
    max_update_ratio: float = setting(
        "AGG_MAX_UPDATE_RATIO", default=100.0, convert=to_positive_float
    )
    max_update_norm: float = setting("AGG_MAX_UPDATE_NORM", default=1e9, convert=to_positive_float)
    #: largest frame read from a connection before it is authenticated (a join's worth)
    pre_auth_bytes: int = setting("AGG_PRE_AUTH_BYTES", default=64 << 10, convert=to_positive_int)
    #: the job's update-transform chain (kind ``update_transform``): comma-separated names, or
    #: JSON (a list of names or ``{"method": ..., "param": {...}}``); announced to clients
    transforms: Any = setting("AGG_TRANSFORMS")  # noqa: RUF009
    #: accept clients speaking Sedna's JSON protocol (subscribe/update_weight/recv_weight)
    sedna_compat: bool = setting("AGG_SEDNA_COMPAT", default=True, convert=to_bool)
    #: largest websocket frame from a Sedna-protocol client (whole models as JSON text)
    ws_size: int = setting("AGG_WS_SIZE", default=32 << 20, convert=to_positive_int)
    #: resume from the latest checkpoint in checkpoint_dir when there is one
    resume: bool = setting("AGG_RESUME", default=True, convert=to_bool)
    #: seconds to keep serving the final model to reconnecting clients after the job ends
    linger: float = setting("AGG_LINGER", default=5.0, convert=to_float)

    @property
    def effective_quorum(self) -> int:
        return self.quorum if self.quorum is not None else self.participants_count

    def algorithm_spec(self) -> Any:
        """What :func:`~sedna_core.plugins.create_algorithm` gets for the aggregation."""
        spec = self.aggregation
        if isinstance(spec, str) and spec.strip().startswith("{"):
            spec = json.loads(spec)
        if self.aggregation_params and isinstance(spec, str):
            return {"method": spec, "param": self.aggregation_params}
        return spec
