"""Settings of the incremental-learning job (Sedna's ``IncrementalLearning`` worker).

Sedna's own variables keep their names (``HEM_NAME``, ``HEM_PARAMETERS``, ``MODEL_URLS``,
``HE_SAVED_URL``, and from :class:`JobConfig` ``MODEL_HOT_UPDATE``, ``MODEL_HOT_UPDATE_CONFIG``,
``MODEL_POLL_PERIOD_SECONDS``). What Sedna leaves to its controller (the deploy rule, the
retrain trigger) and what is new here use ``SEDNA_IL_*``.
"""

from __future__ import annotations

from typing import Any

import attrs

from sedna_core.config._common import JobConfig
from sedna_core.config._settings import setting, to_bool, to_json, to_positive_int

__all__ = ["IncrementalConfig", "default_workspace", "hem_spec"]


def _to_urls(raw: str) -> tuple[str, ...]:
    return tuple(u.strip() for u in raw.split(";") if u.strip())


_to_urls.accepted = "a ';'-separated list of model paths or URLs"  # type: ignore[attr-defined]


def _to_when_full(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("drop_oldest", "drop_newest"):
        raise ValueError(raw)
    return value


_to_when_full.accepted = "drop_oldest or drop_newest"  # type: ignore[attr-defined]


@attrs.frozen
class IncrementalConfig(JobConfig):
    """What an incremental-learning worker reads (explicit argument, environment, default)."""

    hem_name: str | None = setting("HEM_NAME")
    hem_parameters: object = setting("HEM_PARAMETERS", convert=to_json)
    model_urls: tuple[str, ...] = setting("MODEL_URLS", default=(), convert=_to_urls)
    #: default: ``sedna-incremental/<JOB_NAME>`` under the working directory, so that unrelated
    #: programs never share versions (see :attr:`workspace`'s post-init)
    workspace: str = setting("SEDNA_IL_WORKSPACE", default="")
    deploy_rule: str = setting("SEDNA_IL_DEPLOY_RULE", default="accuracy_delta > 0")
    min_eval_size: int = setting("SEDNA_IL_MIN_EVAL_SIZE", default=1, convert=to_positive_int)
    train_trigger: str = setting("SEDNA_IL_TRAIN_TRIGGER", default="num_of_samples > 500")
    hard_example_dir: str | None = setting(("HE_SAVED_URL", "SEDNA_IL_HARD_EXAMPLE_DIR"))
    hard_example_capacity: int = setting(
        "SEDNA_IL_HARD_EXAMPLE_CAPACITY", default=10_000, convert=to_positive_int
    )
    hard_example_when_full: str = setting(
        "SEDNA_IL_HARD_EXAMPLE_WHEN_FULL", default="drop_oldest", convert=_to_when_full
    )
    save_hard_examples: bool = setting("SEDNA_IL_SAVE_HARD_EXAMPLES", default=True, convert=to_bool)
    model_watch_dir: str | None = setting("SEDNA_IL_MODEL_WATCH_DIR")

    def __attrs_post_init__(self) -> None:
        if not self.workspace:
            object.__setattr__(self, "workspace", default_workspace(self.job_name))


def default_workspace(job_name: str) -> str:
    """Where a job keeps its versions when ``SEDNA_IL_WORKSPACE`` is unset (``sedna incremental
    run`` and ``status`` use it too): one folder per job name under the working directory."""
    return f"sedna-incremental/{job_name}"


def hem_spec(config: IncrementalConfig) -> dict[str, Any] | None:
    """Sedna's ``{"method": HEM_NAME, "param": HEM_PARAMETERS}``, or None without ``HEM_NAME``.

    ``HEM_PARAMETERS`` may be Sedna's CRD list ``[{"key": k, "value": v}]`` or a JSON object;
    the registry converts the string values by the miner's declared types.
    """
    if not config.hem_name:
        return None
    params = config.hem_parameters
    return {"method": config.hem_name, "param": params if params is not None else {}}
