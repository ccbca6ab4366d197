"""Configuration of joint inference: the edge job and the cloud big-model service.

Sedna's variables (reference §1.2): ``BIG_MODEL_IP``/``BIG_MODEL_PORT`` (where the edge finds the
cloud), ``BIG_MODEL_BIND_IP``/``BIG_MODEL_BIND_PORT`` (where the cloud listens), ``HEM_NAME`` and
``HEM_PARAMETERS`` (the miner; parameters in the CRD's ``[{"key": k, "value": v}]`` form, or a
JSON object), ``MINING_MODE`` and ``LC_PERIOD``. The ``SEDNA_*`` ones are ours: how long the edge
waits for the cloud, the circuit breaker, and the wire format.
"""

from __future__ import annotations

import attrs

from sedna_core.config._common import JobConfig, ServiceConfig
from sedna_core.config._settings import (
    _accepts,
    setting,
    to_json,
    to_port,
    to_positive_float,
    to_positive_int,
)

__all__ = [
    "MINING_MODES",
    "WIRE_FORMATS",
    "BigModelServiceConfig",
    "JointInferenceConfig",
    "to_mining_mode",
    "to_wire_format",
]

INFERENCE_THEN_MINING = "inference-then-mining"
MINING_THEN_INFERENCE = "mining-then-inference"
MINING_MODES = (INFERENCE_THEN_MINING, MINING_THEN_INFERENCE)
WIRE_FORMATS = ("binary", "json")


@_accepts(" or ".join(MINING_MODES))
def to_mining_mode(raw: str) -> str:
    value = raw.strip().lower()
    if value not in MINING_MODES:
        raise ValueError(raw)
    return value


@_accepts("binary (sedna-core's tensor format) or json (Sedna's {'data': [...]} body)")
def to_wire_format(raw: str) -> str:
    value = raw.strip().lower()
    if value not in WIRE_FORMATS:
        raise ValueError(raw)
    return value


@_accepts("a number of seconds >= 0")
def to_non_negative_float(raw: str) -> float:
    value = float(raw.strip())
    if not value >= 0:
        raise ValueError(raw)
    return value


@attrs.frozen
class JointInferenceConfig(JobConfig):
    """The edge side (:class:`~sedna_core.jobs.joint_inference.JointInference`)."""

    big_model_ip: str = setting("BIG_MODEL_IP", default="127.0.0.1")
    big_model_port: int = setting("BIG_MODEL_PORT", default=5000, convert=to_port)
    #: full base URL of the cloud service (``https://cloud:5000``); wins over ip and port
    big_model_url: str | None = setting("BIG_MODEL_URL")
    hem_name: str | None = setting("HEM_NAME")
    #: raw parameters: Sedna's key/value list or a mapping (converted by the miner's types)
    hem_parameters: object = setting("HEM_PARAMETERS", convert=to_json)
    mining_mode: str = setting("MINING_MODE", default=INFERENCE_THEN_MINING, convert=to_mining_mode)
    lc_period: float = setting("LC_PERIOD", default=30.0, convert=to_positive_float)
    #: seconds the edge waits for the cloud (connect + answer) before answering alone
    cloud_timeout: float = setting("SEDNA_CLOUD_TIMEOUT", default=1.0, convert=to_positive_float)
    #: consecutive cloud failures that open the circuit breaker
    breaker_failures: int = setting("SEDNA_BREAKER_FAILURES", default=3, convert=to_positive_int)
    #: seconds the open breaker skips the cloud before one probe call
    breaker_cooldown: float = setting(
        "SEDNA_BREAKER_COOLDOWN", default=30.0, convert=to_positive_float
    )
    wire: str = setting("SEDNA_JI_WIRE", default="binary", convert=to_wire_format)

    @property
    def cloud_base_url(self) -> str:
        """``http://BIG_MODEL_IP:BIG_MODEL_PORT`` unless ``BIG_MODEL_URL`` says otherwise."""
        if self.big_model_url:
            return self.big_model_url.rstrip("/")
        host = self.big_model_ip
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.big_model_port}"


@attrs.frozen
class BigModelServiceConfig(ServiceConfig):
    """The cloud side (:class:`~sedna_core.jobs.joint_inference.BigModelService`).

    Binds 127.0.0.1 by default (Sedna: the host's address); a non-loopback address needs a
    token (``SEDNA_TOKEN``) or ``SEDNA_INSECURE=1``.
    """

    host: str = setting("BIG_MODEL_BIND_IP", default="127.0.0.1")
    port: int = setting("BIG_MODEL_BIND_PORT", default=5000, convert=to_port)
    #: predictions that may run at once (threads); 1 suits models that are not thread-safe
    workers: int = setting("SEDNA_WORKERS", default=1, convert=to_positive_int)
    #: a prediction expected to take less (seconds) runs on the event loop instead of a thread
    #: (the hop costs about 0.1 ms); 0 keeps all predictions in threads
    inline_predict_below: float = setting(
        "SEDNA_INLINE_PREDICT_SECONDS", default=0.0005, convert=to_non_negative_float
    )
    # Dynamic batching (docs/joint-inference.md, "Many edges: dynamic batching"); defaults
    # chosen on tuning runs of benchmarks/many_edges.py --tune (a model not scored there).
    #: most samples the model gets in one call; 1 turns batching off
    max_batch_size: int = setting("SEDNA_MAX_BATCH_SIZE", default=32, convert=to_positive_int)
    #: seconds a free worker waits for a batch to fill while another batch runs (workers > 1);
    #: an idle model always runs a request at once
    max_queue_delay: float = setting(
        "SEDNA_MAX_QUEUE_DELAY", default=0.002, convert=to_non_negative_float
    )
    #: requests that may wait for the model; one more is answered 503 with Retry-After
    max_queue: int = setting("SEDNA_MAX_QUEUE", default=1024, convert=to_positive_int)
