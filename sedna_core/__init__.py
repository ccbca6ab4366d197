"""sedna-core: edge-cloud collaborative AI with pluggable algorithms.

The four jobs (KubeEdge Sedna's paradigms) and the data sources are importable from here::

    from sedna_core import JointInference, BigModelService, FederatedLearning
    from sedna_core import IncrementalLearning, LifelongLearning, TxtDataParse

They are imported on first access, so ``import sedna_core`` stays light and never imports a
machine-learning framework.
"""

from __future__ import annotations

import importlib
from typing import Any

from sedna_core._version import __version__
from sedna_core.errors import SednaError

_LAZY = {
    "JointInference": "sedna_core.jobs.joint_inference",
    "BigModelService": "sedna_core.jobs.joint_inference",
    "TSBigModelService": "sedna_core.jobs.joint_inference",
    "FederatedLearning": "sedna_core.jobs.federated",
    "AggregationServer": "sedna_core.jobs.federated",
    "IncrementalLearning": "sedna_core.jobs.incremental",
    "LifelongLearning": "sedna_core.jobs.lifelong",
    "KnowledgeBaseServer": "sedna_core.knowledge_base",
    "BaseDataSource": "sedna_core.datasources",
    "TxtDataParse": "sedna_core.datasources",
    "CSVDataParse": "sedna_core.datasources",
}

__all__ = ["SednaError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sedna_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
