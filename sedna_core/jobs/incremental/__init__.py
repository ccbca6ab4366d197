"""Incremental learning: train, gate, deploy only when better, mine hard examples in service,
swap models safely.

::

    from sedna_core.jobs.incremental import IncrementalLearning

    il = IncrementalLearning(estimator=LogisticRegression(), hard_example_mining="Margin",
                             mine_proba=True, deploy_rule="accuracy_delta > 0.01")
    il.train((x, y), eval_data=(x_val, y_val))          # stored as a version, gated, deployed
    raw, final, is_hard = il.inference(sample)           # Sedna's 3-tuple
    out = il.inference_batch(batch)                      # out.is_hard: one bool per sample
    il.rollback()                                        # back to the previous version

The pieces are usable on their own: :class:`DeployGate` (candidate vs serving model on the same
held-out data), :class:`HardExampleStore` (bounded, on disk), :class:`ModelSlot` and the
watchers (hot update), :func:`parse_condition` (Sedna's trigger syntax), and
:class:`LoopRunner` (infer, mine, label, retrain, gate, deploy over a stream).
"""

from sedna_core.jobs.incremental._conditions import Comparison, Condition, parse_condition
from sedna_core.jobs.incremental._gate import DeployGate, GateDecision, GateResult, Rule
from sedna_core.jobs.incremental._hard_examples import WHEN_FULL, HardExamples, HardExampleStore
from sedna_core.jobs.incremental._hot_update import (
    HotUpdateConfigWatcher,
    ModelDirectoryWatcher,
    ModelSlot,
    ModelWatcher,
    ServingModel,
    read_hot_update_config,
)
from sedna_core.jobs.incremental._inference import BatchInference
from sedna_core.jobs.incremental._job import IncrementalLearning
from sedna_core.jobs.incremental._loop import LoopReport, LoopRunner, WindowStats
from sedna_core.jobs.incremental._streams import csv_stream, sea_drift_stream
from sedna_core.jobs.incremental._versions import ModelVersions

__all__ = [
    "WHEN_FULL",
    "BatchInference",
    "Comparison",
    "Condition",
    "DeployGate",
    "GateDecision",
    "GateResult",
    "HardExampleStore",
    "HardExamples",
    "HotUpdateConfigWatcher",
    "IncrementalLearning",
    "LoopReport",
    "LoopRunner",
    "ModelDirectoryWatcher",
    "ModelSlot",
    "ModelVersions",
    "ModelWatcher",
    "Rule",
    "ServingModel",
    "WindowStats",
    "csv_stream",
    "parse_condition",
    "read_hot_update_config",
    "sea_drift_stream",
]
