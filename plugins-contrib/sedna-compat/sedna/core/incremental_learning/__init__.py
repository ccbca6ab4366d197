"""Sedna's ``sedna.core.incremental_learning``: ``IncrementalLearning`` on sedna-core's job.

``train`` stores, gates and deploys a model version (Sedna's controller only saw the file);
``evaluate`` returns Sedna's list of ``{"format", "url", "metrics"}``; ``inference`` returns
Sedna's ``(infer_result, final_result, is_hard_example)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sedna.core._common import callback, hem_from_config, hem_spec
from sedna_core.jobs.incremental import IncrementalLearning as _IncrementalLearning

__all__ = ["IncrementalLearning"]


class IncrementalLearning(_IncrementalLearning):
    """Sedna's ``IncrementalLearning(estimator, hard_example_mining=None)``."""

    def __init__(
        self, estimator: Any = None, hard_example_mining: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(estimator, hem_spec(hard_example_mining), **kwargs)

    @classmethod
    def get_hem_algorithm_from_config(cls, **param: Any) -> dict[str, Any]:
        """``{"method": HEM_NAME, "param": HEM_PARAMETERS + param}``, or ``{}`` without one."""
        return hem_from_config(**param)

    def inference(
        self, data: Any, post_process: Callable[..., Any] | str | None = None, **kwargs: Any
    ) -> tuple[Any, Any, bool]:
        return super().inference(data, callback(post_process), **kwargs)

    def evaluate(
        self, data: Any, post_process: Callable[..., Any] | str | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        return super().evaluate(data, callback(post_process), **kwargs)
