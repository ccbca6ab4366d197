"""Backends: one framework's model behind one interface, and how one is chosen.

::

    from sedna_core.backends import set_backend
    est = set_backend(my_model)                 # detected from the model's type
    est = set_backend(MyNet, backend="torch")   # a class: instantiated on first use
    est.train(train_data); est.predict(x); est.save("/models/"); est.get_weights()

The framework backends live in plugin distributions (``sedna-plugin-keras``, ``-torch``,
``-xgboost``, ``-sklearn``); the core holds the interface, the generic adapter for Sedna's
duck-typed "Customize" estimators (backend ``"custom"``), and helpers backends share.
"""

from sedna_core.algorithms.backend import BaseBackend, LinearDecision, is_factory, mro_names
from sedna_core.backends._device import device_from_env
from sedna_core.backends._generic import GenericBackend, call_accepted
from sedna_core.backends._metrics import (
    compute_metrics,
    evaluate_by_task,
    infer_task,
    logits_to_proba,
    proba_to_labels,
)
from sedna_core.backends._select import BACKEND_TYPES, TF1_NOTE, backend_name, set_backend
from sedna_core.backends._training import TASKS, check_training_options, training_xy

__all__ = [
    "BACKEND_TYPES",
    "TASKS",
    "TF1_NOTE",
    "BaseBackend",
    "GenericBackend",
    "LinearDecision",
    "backend_name",
    "call_accepted",
    "check_training_options",
    "compute_metrics",
    "device_from_env",
    "evaluate_by_task",
    "infer_task",
    "is_factory",
    "logits_to_proba",
    "mro_names",
    "proba_to_labels",
    "set_backend",
    "training_xy",
]
