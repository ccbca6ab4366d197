"""Settings every job and every service shares (Sedna's controller-injected variables)."""

from __future__ import annotations

import attrs

from sedna_core.config._settings import (
    Settings,
    setting,
    to_bool,
    to_port,
    to_positive_float,
    to_positive_int,
)

__all__ = ["JobConfig", "ServiceConfig"]

DEFAULT_MAX_REQUEST_SIZE = 64 * 1024 * 1024
# JSON is decoded holding the GIL (a thread does not help), so its cap bounds event-loop stalls.
DEFAULT_MAX_JSON_SIZE = 4 * 1024 * 1024


@attrs.frozen
class JobConfig(Settings):
    """What Sedna's controllers tell every worker (``../reference`` §1.2)."""

    job_name: str = setting(("JOB_NAME", "SERVICE_NAME"), default="sedna")
    worker_name: str | None = setting("WORKER_NAME")
    namespace: str | None = setting("NAMESPACE")
    lc_server: str | None = setting("LC_SERVER")
    model_url: str | None = setting("MODEL_URL")
    model_name: str | None = setting("MODEL_NAME")
    data_path_prefix: str = setting("DATA_PATH_PREFIX", default="/home/data")
    train_dataset_url: str | None = setting("TRAIN_DATASET_URL")
    test_dataset_url: str | None = setting("TEST_DATASET_URL")
    original_dataset_url: str | None = setting("ORIGINAL_DATASET_URL")
    backend_type: str | None = setting("BACKEND_TYPE")
    device_category: str = setting("DEVICE_CATEGORY", default="CPU")
    model_load_mode: str = setting("MODEL_LOAD_MODE", default="file")
    model_hot_update: bool = setting("MODEL_HOT_UPDATE", default=False, convert=to_bool)
    model_hot_update_config: str | None = setting("MODEL_HOT_UPDATE_CONFIG")
    model_poll_period: float = setting(
        "MODEL_POLL_PERIOD_SECONDS", default=60.0, convert=to_positive_float
    )
    token: str | None = setting("SEDNA_TOKEN")
    tls_ca: str | None = setting("SEDNA_TLS_CA")
    request_timeout: float = setting("SEDNA_TIMEOUT", default=30.0, convert=to_positive_float)

    @property
    def worker(self) -> str:
        """The worker's name as Sedna uses it: ``WORKER_NAME``, else the job name."""
        return self.worker_name or self.job_name


@attrs.frozen
class ServiceConfig(Settings):
    """How a sedna server binds and protects itself.

    Subclasses re-declare ``host`` and ``port`` with their own Sedna variables
    (``BIG_MODEL_BIND_IP``, ``AGG_BIND_PORT``, ...).
    """

    host: str = setting("SEDNA_BIND_IP", default="127.0.0.1")
    port: int = setting("SEDNA_BIND_PORT", default=0, convert=to_port)
    token: str | None = setting("SEDNA_TOKEN")
    insecure: bool = setting("SEDNA_INSECURE", default=False, convert=to_bool)
    tls_cert: str | None = setting("SEDNA_TLS_CERT")
    tls_key: str | None = setting("SEDNA_TLS_KEY")
    max_request_size: int = setting(
        "SEDNA_MAX_REQUEST_SIZE", default=DEFAULT_MAX_REQUEST_SIZE, convert=to_positive_int
    )
    shutdown_timeout: float = setting(
        "SEDNA_SHUTDOWN_TIMEOUT", default=10.0, convert=to_positive_float
    )
    # Slow and oversized clients (docs/runtime.md, "Limits and timeouts").
    max_json_size: int = setting(
        "SEDNA_MAX_JSON_SIZE", default=DEFAULT_MAX_JSON_SIZE, convert=to_positive_int
    )
    header_timeout: float = setting(
        "SEDNA_HEADER_TIMEOUT", default=10.0, convert=to_positive_float
    )
    body_timeout: float = setting("SEDNA_BODY_TIMEOUT", default=60.0, convert=to_positive_float)
    max_pending_connections: int = setting(
        "SEDNA_MAX_PENDING_CONNECTIONS", default=64, convert=to_positive_int
    )
