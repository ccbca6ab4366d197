"""Checks that gradient-trained backends (torch, keras) share, whatever the framework."""

from __future__ import annotations

from typing import Any

from sedna_core.datasources import as_xy
from sedna_core.errors import BackendError

__all__ = ["TASKS", "check_training_options", "training_xy"]

#: values of a backend's ``task`` parameter (``"auto"``: inferred from the labels)
TASKS = ("auto", "classification", "regression")


def check_training_options(*, task: str, epochs: int, batch_size: int) -> None:
    """Refuse an unknown ``task`` or a non-positive ``epochs``/``batch_size`` at construction."""
    if task not in TASKS:
        raise BackendError(f"task must be auto, classification or regression, not {task!r}")
    if epochs < 1 or batch_size < 1:
        raise BackendError(f"epochs and batch_size must be >= 1 (got {epochs}, {batch_size})")


def training_xy(train_data: Any, *, framework: str, proximal_mu: float = 0.0) -> tuple[Any, Any]:
    """``(x, y)`` of ``train_data`` for a supervised fit.

    Raises :class:`BackendError` when the data has no labels (``framework`` names who needs
    them) or ``proximal_mu`` (FedProx's coefficient) is negative.
    """
    x, y = as_xy(train_data)
    if y is None:
        raise BackendError(f"{framework} training needs labels: the data has no y")
    if proximal_mu < 0:
        raise BackendError(f"proximal_mu must be >= 0, not {proximal_mu}")
    return x, y
