"""``IncrementalLearning``: Sedna's incremental-learning worker, with the deploy gate, model
versions, hot swap and the hard-example store in the SDK.

This module holds the job's construction, training, evaluation and the service-side cycle
(retrain trigger, labelling, retraining); model versions in and out of service are in
``_deployment``, the inference path (prediction and hard-example mining) in ``_inference``.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from sedna_core.algorithms import BaseBackend, BaseHardExampleMiner
from sedna_core.clock import Clock
from sedna_core.config.incremental import IncrementalConfig, hem_spec
from sedna_core.datasources import as_xy
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.incremental._conditions import Condition, parse_condition
from sedna_core.jobs.incremental._deployment import INITIAL, ModelDeployment
from sedna_core.jobs.incremental._gate import DeployGate, GateDecision, Rule
from sedna_core.jobs.incremental._hard_examples import HardExampleStore
from sedna_core.jobs.incremental._hot_update import (
    HotUpdateConfigWatcher,
    ModelDirectoryWatcher,
    ModelSlot,
    ModelWatcher,
)
from sedna_core.jobs.incremental._inference import Inference, count_samples
from sedna_core.jobs.incremental._versions import ModelVersions

__all__ = ["IncrementalLearning"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _artifact_name(job_name: str) -> str:
    name = _UNSAFE.sub("-", job_name).strip(".-_") or "model"
    return name[:128]


class IncrementalLearning(ModelDeployment, Inference, JobBase):
    """Train, gate, deploy, serve and mine hard examples, as Sedna's incremental learning.

    Parameters
    ----------
    estimator
        The model: a framework model, a class/factory, a Sedna "Customize" object, or a
        :class:`~sedna_core.algorithms.BaseBackend`. Candidates are trained on copies of it
        (``copy.deepcopy``), so the serving model is never modified in place.
    hard_example_mining
        A miner spec (``"Margin"``, ``{"method": "IBT", "param": {...}}``, a miner instance);
        default from ``HEM_NAME`` / ``HEM_PARAMETERS``; None: nothing is hard.
    config
        The job's settings; default :meth:`IncrementalConfig.from_env`.
    backend
        Backend name (``"sklearn"``...), else ``BACKEND_TYPE``, else detected.
    workspace
        Directory for versions, decisions and hard examples (``SEDNA_IL_WORKSPACE``).
    deploy_rule
        Gate rule, e.g. ``"accuracy_delta > 0"`` or ``"precision_delta > 0.1"``, or a callable
        ``(candidate_scores, serving_scores) -> bool`` (``SEDNA_IL_DEPLOY_RULE``).
    metrics
        Extra metrics the gate computes and records besides those the rule names.
    min_eval_size
        Fewest held-out samples a gate decision may rest on (``SEDNA_IL_MIN_EVAL_SIZE``).
    train_trigger
        Retrain condition over ``num_of_samples`` (hard examples added since the last training)
        and ``num_of_labelled_samples``, e.g. ``"num_of_samples > 500"``.
    hard_examples
        A :class:`HardExampleStore`, or a directory for one; default ``HE_SAVED_URL`` or
        ``<workspace>/hard_examples`` when a miner is configured. ``False``: keep none.
    mine_proba
        Judge hardness on ``predict_proba`` of the serving model (for probability miners such as
        Margin or CrossEntropy on a classifier whose ``predict`` gives labels) instead of on the
        post-processed result (Sedna's behaviour).
    warm_start
        Train candidates from a copy of the serving model instead of the original estimator.
    probe
        A few samples every newly loaded model must predict on before it may serve.
    backend_factory
        Builds a fresh backend for each candidate and each loaded version, where
        ``copy.deepcopy`` of the estimator is not suitable.
    plugin_manager, clock
        Plugin manager for miners and hooks; time source (watchers poll on it).
    """

    job_kind: ClassVar[str] = "incrementallearningjob"

    def __init__(
        self,
        estimator: Any = None,
        hard_example_mining: Any = None,
        *,
        config: IncrementalConfig | None = None,
        backend: str | None = None,
        workspace: str | os.PathLike[str] | None = None,
        deploy_rule: Rule | None = None,
        metrics: Sequence[str | Callable[..., Any]] | None = None,
        min_eval_size: int | None = None,
        train_trigger: str | Mapping[str, Any] | Condition | None = None,
        hard_examples: HardExampleStore | str | os.PathLike[str] | bool | None = None,
        mine_proba: bool = False,
        warm_start: bool = False,
        probe: Any = None,
        backend_factory: Callable[[], BaseBackend] | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        cfg = config if config is not None else IncrementalConfig.from_env()
        overrides = {
            "workspace": os.fspath(workspace) if workspace is not None else None,
            "deploy_rule": deploy_rule if isinstance(deploy_rule, str) else None,
            "min_eval_size": min_eval_size,
            "train_trigger": train_trigger if isinstance(train_trigger, str) else None,
        }
        cfg = attrs.evolve(cfg, **{k: v for k, v in overrides.items() if v is not None})
        super().__init__(
            estimator, config=cfg, backend=backend, plugin_manager=plugin_manager, clock=clock
        )
        self.config: IncrementalConfig = cfg
        self._phase = threading.local()
        self.mine_proba = bool(mine_proba)
        self.warm_start = bool(warm_start)
        self.probe = probe
        self._backend_factory = backend_factory
        self.gate = DeployGate(
            deploy_rule
            if deploy_rule is not None and not isinstance(deploy_rule, str)
            else cfg.deploy_rule,
            metrics=metrics,
            min_eval_size=cfg.min_eval_size,
        )
        self.trigger = parse_condition(
            train_trigger
            if train_trigger is not None and not isinstance(train_trigger, str)
            else cfg.train_trigger,
            what="SEDNA_IL_TRAIN_TRIGGER",
        )
        self.hem = self._make_miner(hard_example_mining)
        self.versions = ModelVersions(cfg.workspace, _artifact_name(cfg.job_name), clock=self.clock)
        self.hard_examples = self._make_store(hard_examples)
        #: the deployment gate's decision on the version trained last
        self.last_decision: GateDecision | None = None
        #: the version the last :meth:`train` produced
        self.last_trained: str | None = None
        self.stats = {"inference_number": 0, "hard_example_number": 0, "unsaved_hard_examples": 0}
        self._stats_lock = threading.Lock()
        self._slot = ModelSlot()
        self._deploy_lock = threading.RLock()
        self.watchers: list[ModelWatcher] = []
        self._start_watchers()
        self.log.info(
            "incremental learning ready",
            workspace=str(self.versions.workspace),
            serving=self.versions.serving,
            rule=self.gate.rule_text,
            miner=type(self.hem).__name__ if self.hem else None,
        )

    # -- construction helpers ---------------------------------------------------------------

    def _make_miner(self, spec: Any) -> BaseHardExampleMiner | None:
        spec = spec if spec is not None else hem_spec(self.config)
        if spec is None:
            return None
        from sedna_core.plugins import create_algorithm

        miner = create_algorithm("hard_example_mining", spec, plugin_manager=self.plugin_manager)
        return miner  # type: ignore[return-value]

    def _make_store(self, spec: Any) -> HardExampleStore | None:
        if isinstance(spec, HardExampleStore):
            return spec
        if spec is False or (
            spec is None and (self.hem is None or not self.config.save_hard_examples)
        ):
            return None
        root = spec if isinstance(spec, str | os.PathLike) else self.config.hard_example_dir
        return HardExampleStore(
            root or Path(self.config.workspace) / "hard_examples",
            capacity=self.config.hard_example_capacity,
            when_full=self.config.hard_example_when_full,
            clock=self.clock,
        )

    def _start_watchers(self) -> None:
        cfg = self.config
        period = cfg.model_poll_period
        if cfg.model_hot_update:
            if not cfg.model_hot_update_config and not cfg.model_watch_dir:
                raise ConfigError(
                    "MODEL_HOT_UPDATE_CONFIG",
                    None,
                    "the hot-update JSON file (path or URL) when MODEL_HOT_UPDATE=true, "
                    "or SEDNA_IL_MODEL_WATCH_DIR",
                )
            if cfg.model_hot_update_config:
                self.watchers.append(
                    HotUpdateConfigWatcher(
                        cfg.model_hot_update_config,
                        self._hot_deploy,
                        period=period,
                        clock=self.clock,
                    )
                )
        if cfg.model_watch_dir:
            self.watchers.append(
                ModelDirectoryWatcher(
                    cfg.model_watch_dir, self._hot_deploy, period=period, clock=self.clock
                )
            )
        for w in self.watchers:
            w.start()

    # -- train / evaluate -------------------------------------------------------------------

    def train(
        self,
        train_data: Any,
        valid_data: Any = None,
        post_process: Callable[[Any], Any] | None = None,
        *,
        eval_data: Any = None,
        deploy: bool = True,
        **kwargs: Any,
    ) -> Any:
        """Train a candidate, store it as a new version, and (with ``deploy``) gate it.

        The candidate is judged against the serving model on ``eval_data`` (default
        ``valid_data``); the first version is deployed without comparison when there is no
        held-out data (the estimator given to the constructor, if it was an instance, served
        until then as version ``"initial"``). Keyword arguments go
        to the backend's ``train``. Returns the trained backend, or ``post_process(backend)``.
        The version is :attr:`last_trained`, the decision :attr:`last_decision`.

        Parameters
        ----------
        train_data
            The training data, as the backend's ``train`` takes it (e.g. an ``(x, y)`` pair).
        valid_data
            Passed to the backend's ``train``; also the held-out data when ``eval_data`` is None.
        post_process
            Applied to the trained backend before it is returned (None: the backend).
        eval_data
            Held-out data the gate scores both models on.
        deploy
            Whether to gate (and deploy) the candidate now; False only stores it.
        **kwargs
            Passed to the backend's ``train``.
        """
        base = None
        if self.warm_start:
            current = self._slot.get() or self._initial_serving()
            base = current.model if current is not None else None
        candidate = self._new_backend(base)
        try:
            result = candidate.train(train_data, valid_data, **kwargs)
            info = self._store_model(
                candidate,
                metrics=result,
                metadata={"source": "train", "n_train": count_samples(train_data)},
            )
            # Sedna's train worker leaves the trained model under MODEL_URL, where its
            # controller takes it to the eval worker: that is the URL reported.
            output = self._copy_to_model_url(info.path)
        except Exception:
            self.report("train", "failed")
            raise
        from sedna_core.reporting import model_result

        self.last_trained = info.version
        self.report(
            "train",
            "completed",
            results=[
                model_result(
                    str(output or info.path),
                    _plain(result),
                    fmt=info.format,
                    data_path_prefix=self.config.data_path_prefix,
                )
            ],
        )
        self.log.info("candidate trained", version=info.version, path=str(output or info.path))
        if deploy:
            held_out = eval_data if eval_data is not None else valid_data
            current = self.serving
            # One message per phase, as Sedna's workers send: the controller runs its own
            # eval and deploy workers, so this process's gate is logged, not reported.
            with self._reporting_only("train"):
                if held_out is None and current is not None and current.version != INITIAL:
                    self.last_decision = self._decide_without_data(info.version)
                else:
                    self.last_decision = self.propose(info.version, held_out)
        return post_process(candidate) if callable(post_process) else candidate

    @contextlib.contextmanager
    def _reporting_only(self, kind: str) -> Iterator[None]:
        """Within the block, reports of other kinds stay in the log (this thread only)."""
        previous = getattr(self._phase, "kind", None)
        self._phase.kind = kind
        try:
            yield
        finally:
            self._phase.kind = previous

    def report(
        self,
        kind: str,
        status: str | None,
        results: list[dict[str, Any]] | None = None,
        owner_info: dict[str, Any] | None = None,
    ) -> None:
        """Tell Sedna's local controller, one message per phase; never blocks.

        Within a phase (``train``, ``eval``), reports of another kind stay in the log, so
        Sedna sees one message per phase, as with its own SDK.

        Parameters
        ----------
        kind
            The message kind (``"train"``, ``"eval"``, ``"inference"``, ...).
        status
            The phase's status (``"completed"``, ``"failed"``, ...), or None for none.
        results
            The phase's results (one dict per output, e.g. model path and metrics), if any.
        owner_info
            Extra information about the job that sends the message, if any.
        """
        phase = getattr(getattr(self, "_phase", None), "kind", None)
        if phase is not None and kind != phase:
            self.log.info(
                "kept from the local controller (one message per phase)",
                kind=kind,
                status=status,
                phase=phase,
            )
            return
        super().report(kind, status, results=results, owner_info=owner_info)

    def evaluate(
        self,
        data: Any,
        post_process: Callable[[Any], Any] | None = None,
        *,
        metrics: Sequence[Any] | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Evaluate each model of ``MODEL_URLS`` (Sedna), else the serving model, on ``data``.

        Returns Sedna's list of ``{"format", "url", "metrics"}``, also reported (``eval``).

        Parameters
        ----------
        data
            The evaluation data, as the backend's ``evaluate`` takes it.
        post_process
            Applied to each model's metrics before they are reported (None: as they are).
        metrics
            The metrics to compute (names, or a mapping of name to callable; None: the
            backend's default).
        **kwargs
            Passed to the backend's ``evaluate``.
        """
        from sedna_core.artifacts import fetch, is_remote
        from sedna_core.reporting import model_result

        prefix = self.config.data_path_prefix
        results = []
        if self.config.model_urls:
            for url in self.config.model_urls:
                with tempfile.TemporaryDirectory(prefix="sedna-il-eval-") as tmp:
                    local = (
                        fetch(url, Path(tmp) / (Path(url).name or "model"))
                        if is_remote(url)
                        else url
                    )
                    model = self._load_file(local)
                    res = model.evaluate(data, metrics=metrics, **kwargs)
                res = post_process(res) if callable(post_process) else res
                results.append(model_result(url, res, data_path_prefix=prefix))
        else:
            serving = self._serving()
            res = serving.model.evaluate(data, metrics=metrics, **kwargs)
            res = post_process(res) if callable(post_process) else res
            results.append(
                model_result(serving.source or serving.version, res, data_path_prefix=prefix)
            )
        self.report("eval", "completed", results=results)
        return results

    # -- the service-side cycle -------------------------------------------------------------

    def retrain_values(self) -> dict[str, float]:
        """What the retrain trigger reads: ``num_of_samples`` (hard examples since the last
        training) and ``num_of_labelled_samples``."""
        store = self.hard_examples
        if store is None:
            return {"num_of_samples": 0.0, "num_of_labelled_samples": 0.0}
        return {
            "num_of_samples": float(store.count(since_mark=True)),
            "num_of_labelled_samples": float(store.count(since_mark=True, labelled_only=True)),
        }

    def retrain_due(self) -> bool:
        """Whether the retrain trigger (``SEDNA_IL_TRAIN_TRIGGER``) holds now."""
        return self.trigger.evaluate(self.retrain_values())

    def label_hard_examples(self, labeller: Callable[[np.ndarray], Any]) -> int:
        """Label the stored hard examples that have no label with ``labeller(x) -> y``.

        Parameters
        ----------
        labeller
            Called once with the unlabelled samples (stacked along the first axis); returns
            one label per sample.

        Returns
        -------
        int
            The number of examples labelled (0 when none was waiting).
        """
        store = self._require_store()
        pending = store.load()
        todo = ~pending.labelled
        if not todo.any():
            return 0
        store.set_labels(pending.ids[todo], np.asarray(labeller(pending.x[todo])))
        return int(todo.sum())

    def retrain(
        self,
        *,
        extra_data: Any = None,
        eval_data: Any = None,
        last: int | None = None,
        **kwargs: Any,
    ) -> GateDecision | None:
        """Train on the labelled hard examples (newest ``last``; plus ``extra_data``), then
        gate on ``eval_data``. The store is marked, so the trigger counts from zero again.

        Parameters
        ----------
        extra_data
            An ``(x, y)`` pair trained on with the hard examples (placed before them).
        eval_data
            Held-out data for the gate (None: as :meth:`train` decides without it).
        last
            Train on the newest ``last`` labelled hard examples only (None: all of them).
        **kwargs
            Passed to :meth:`train` (and from there to the backend's ``train``).

        Returns
        -------
        GateDecision or None
            :attr:`last_decision` after training: this candidate's decision (with
            ``deploy=False`` in ``kwargs``: the earlier one, or None when there is none).
        """
        store = self._require_store()
        held = store.load(labelled_only=True, last=last)
        x, y = held.x, held.y
        if extra_data is not None:
            ex, ey = as_xy(extra_data)
            x = np.concatenate([np.asarray(ex), x]) if len(x) else np.asarray(ex)
            y = np.concatenate([np.asarray(ey), y]) if y is not None and len(y) else np.asarray(ey)
        if x is None or len(x) == 0 or y is None:
            raise JobError("nothing to retrain on: no labelled hard examples and no extra_data")
        store.mark()
        self.train((x, y), eval_data=eval_data, **kwargs)
        return self.last_decision

    def _require_store(self) -> HardExampleStore:
        if self.hard_examples is None:
            raise JobError(
                "this job keeps no hard examples: configure a miner (hard_example_mining or "
                "HEM_NAME) or pass hard_examples=<directory>"
            )
        return self.hard_examples

    def decisions(self) -> list[GateDecision]:
        """Every decision recorded in this workspace, oldest first."""
        return self.versions.decisions()

    def close(self) -> None:
        """Stop the watchers and the reporter."""
        for w in self.watchers:
            w.stop(timeout=1.0)
        super().close()


def _plain(result: Any) -> Any:
    """Training results as LC reports carry them (numpy values as Python numbers)."""
    if isinstance(result, Mapping):
        return {str(k): _plain(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [_plain(v) for v in result]
    if isinstance(result, np.generic):
        return result.item()
    if isinstance(result, np.ndarray):
        return result.tolist()
    return result
