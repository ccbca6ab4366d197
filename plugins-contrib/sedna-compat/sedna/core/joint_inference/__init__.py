"""Sedna's ``sedna.core.joint_inference``: ``JointInference`` (edge), ``BigModelService`` (cloud).

sedna-core's jobs with Sedna's extras: ``get_hem_algorithm_from_config``, ``{}`` meaning "the
CRD's miner", ``ClassFactory`` miners, named callbacks, and the cloud's answer as a list
(sedna-core's binary wire format decodes it to an array). ``TSBigModelService`` is the
pre-2021 name of ``BigModelService``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from sedna.core._common import callback, hem_from_config, hem_spec, inference_only
from sedna_core.jobs.joint_inference import BigModelService as _BigModelService
from sedna_core.jobs.joint_inference import JointInference as _JointInference

__all__ = ["BigModelService", "JointInference", "TSBigModelService"]


class JointInference(_JointInference):
    """Sedna's ``JointInference(estimator=None, hard_example_mining=None)``.

    Keyword arguments of sedna-core's :class:`~sedna_core.jobs.joint_inference.JointInference`
    (``cloud_timeout``, ``token``...) are accepted too.
    """

    def __init__(
        self, estimator: Any = None, hard_example_mining: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(inference_only(estimator), hem_spec(hard_example_mining), **kwargs)

    @classmethod
    def get_hem_algorithm_from_config(cls, **param: Any) -> dict[str, Any]:
        """``{"method": HEM_NAME, "param": HEM_PARAMETERS + param}``, or ``{}`` without one."""
        return hem_from_config(**param)

    def inference(
        self, data: Any = None, post_process: Callable[..., Any] | str | None = None, **kwargs: Any
    ) -> list[Any]:
        is_hard, final, edge, cloud = super().inference(data, callback(post_process), **kwargs)
        if isinstance(cloud, np.ndarray):  # Sedna's cloud_result is the JSON list it received
            as_list = cloud.tolist()
            final = as_list if final is cloud else final
            cloud = as_list
        return [is_hard, final, edge, cloud]


class BigModelService(_BigModelService):
    """Sedna's ``BigModelService(estimator)``; ``start()`` serves until stopped."""

    def __init__(self, estimator: Any = None, **kwargs: Any) -> None:
        super().__init__(inference_only(estimator), **kwargs)

    def inference(
        self, data: Any = None, post_process: Callable[..., Any] | str | None = None, **kwargs: Any
    ) -> Any:
        return super().inference(data, callback(post_process), **kwargs)


#: Sedna's name for ``BigModelService`` before its 2021 rename
TSBigModelService = BigModelService
