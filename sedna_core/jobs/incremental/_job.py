"""``IncrementalLearning``: Sedna's incremental-learning worker, with the deploy gate, model
versions, hot swap and the hard-example store in the SDK."""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import attrs
import numpy as np

from sedna_core.algorithms import BaseBackend, BaseHardExampleMiner
from sedna_core.algorithms.backend import is_factory
from sedna_core.clock import Clock
from sedna_core.config.incremental import IncrementalConfig, hem_spec
from sedna_core.datasources import as_x, as_xy
from sedna_core.errors import ArtifactError, ConfigError, DataSourceError, JobError
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.incremental._conditions import Condition, parse_condition
from sedna_core.jobs.incremental._gate import DeployGate, GateDecision, GateResult, Rule
from sedna_core.jobs.incremental._hard_examples import HardExampleStore
from sedna_core.jobs.incremental._hot_update import (
    HotUpdateConfigWatcher,
    ModelDirectoryWatcher,
    ModelSlot,
    ModelWatcher,
    ServingModel,
)
from sedna_core.jobs.incremental._versions import ModelVersions

__all__ = ["BatchInference", "IncrementalLearning"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: the version name of the estimator given to the constructor, before any version is deployed
INITIAL = "initial"


@attrs.frozen(eq=False)
class BatchInference:
    """What :meth:`IncrementalLearning.inference_batch` returns.

    ``is_hard`` has one bool per sample; ``version`` is the model version that served every
    sample of the call; ``hard_ids`` are the hard examples' ids in the store (empty when none
    were kept).
    """

    raw: Any
    final: Any
    is_hard: np.ndarray
    version: str
    hard_ids: np.ndarray = attrs.field(factory=lambda: np.empty(0, dtype=np.int64))


def _artifact_name(job_name: str) -> str:
    name = _UNSAFE.sub("-", job_name).strip(".-_") or "model"
    return name[:128]


class IncrementalLearning(JobBase):
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
        self.last_decision: GateDecision | None = None
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

    # -- models -----------------------------------------------------------------------------

    def _new_backend(self, base: Any = None) -> BaseBackend:
        if self._backend_factory is not None and base is None:
            return self._backend_factory()
        template = base if base is not None else self.estimator
        if template is None:
            raise JobError("IncrementalLearning needs an estimator to train or load models")
        return copy.deepcopy(template)

    def _load_file(self, path: str | os.PathLike[str]) -> BaseBackend:
        """A fresh backend with the model at ``path``, checked on :attr:`probe`."""
        model = self._new_backend()
        model.load(os.fspath(path))
        if self.probe is not None:
            model.predict(as_x(self.probe))
        return model

    def _load_version(self, version: str) -> tuple[BaseBackend, Any]:
        info = self.versions.get(version)  # IntegrityError when the file was altered
        return self._load_file(info.path), info

    @property
    def serving(self) -> ServingModel | None:
        """The model in service now (version and backend), or None."""
        return self._slot.get() or self._initial_serving()

    def _serving(self) -> ServingModel:
        current = self._slot.get()
        if current is not None:
            return current
        initial = self._initial_serving()
        if initial is None:
            return self._slot.require()
        return initial

    def _initial_serving(self) -> ServingModel | None:
        """First use: the deployed version, else MODEL_URL's file, else the given estimator."""
        with self._deploy_lock:
            current = self._slot.get()
            if current is not None:
                return current
            version = self.versions.serving
            if version is not None:
                model, info = self._load_version(version)
                return self._swap(ServingModel(version, model, str(info.path), self.clock.time()))
            path = self._model_url_file()
            if path is not None:
                model = self._load_file(path)
                info = self._store(path, metadata={"source": str(path)})
                self.versions.mark_deployed(info.version)
                return self._swap(ServingModel(info.version, model, str(path), self.clock.time()))
            if self._template_serves():
                return self._swap(ServingModel(INITIAL, self.estimator, "estimator", 0.0))
            return None

    def _template_serves(self) -> bool:
        """A model given as an instance (not a class or factory) serves until a version does."""
        if self.estimator is None:
            return False
        given = getattr(self.estimator, "estimator", None)
        return self.estimator.has_model or (given is not None and not is_factory(given))

    def _model_url_file(self) -> Path | None:
        if not self.config.model_url or self.estimator is None:
            return None
        from sedna_core.artifacts import is_remote, resolve_model_path

        try:
            target = resolve_model_path(self.config, self.estimator.default_model_file)
            if is_remote(target):
                return None
        except (ConfigError, ArtifactError):
            return None
        path = Path(target)
        return path if path.is_file() else None

    def _swap(self, new: ServingModel) -> ServingModel:
        self._slot.swap(new)
        return new

    def _store(
        self,
        file: str | os.PathLike[str],
        *,
        metrics: Any = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        suffix = Path(file).suffix.lstrip(".").lower()
        fmt = suffix if re.fullmatch(r"[a-z0-9][a-z0-9._+-]{0,31}", suffix) else "bin"
        return self.versions.add(
            file,
            format=fmt,
            metrics=metrics if isinstance(metrics, Mapping) else None,
            metadata=metadata,
        )

    def _store_model(self, model: BaseBackend, *, metrics: Any, metadata: Mapping[str, Any]) -> Any:
        with tempfile.TemporaryDirectory(prefix="sedna-il-save-") as tmp:
            written = model.save(tmp + os.sep)
            return self._store(written, metrics=metrics, metadata=metadata)

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
                metadata={"source": "train", "n_train": _count(train_data)},
            )
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
                    str(info.path),
                    _plain(result),
                    fmt=info.format,
                    data_path_prefix=self.config.data_path_prefix,
                )
            ],
        )
        self.log.info("candidate trained", version=info.version)
        if deploy:
            held_out = eval_data if eval_data is not None else valid_data
            current = self.serving
            if held_out is None and current is not None and current.version != INITIAL:
                self.last_decision = self._decide_without_data(info.version)
            else:
                self.last_decision = self.propose(info.version, held_out)
        return post_process(candidate) if callable(post_process) else candidate

    def _decide_without_data(self, version: str) -> GateDecision:
        serving = self._slot.get()
        decision = GateDecision(
            kind="gate",
            deployed=False,
            candidate=version,
            serving=serving.version if serving else None,
            rule=self.gate.rule_text,
            reason="no held-out data (eval_data or valid_data) to compare with the serving model",
            time=self.clock.time(),
        )
        self.versions.mark_rejected(version)
        self.versions.record(decision)
        return decision

    def propose(self, version: str, eval_data: Any) -> GateDecision:
        """Judge a stored version against the serving model on ``eval_data``; deploy it if the
        rule passes. A version that cannot be loaded or scored is rejected; the serving model
        stays. The decision is recorded, reported (``eval``, then ``deploy``) and returned."""
        version = str(version)
        with self._deploy_lock:
            serving = self._slot.get() or self._initial_serving()
            base = dict(
                kind="gate",
                candidate=version,
                serving=serving.version if serving else None,
                rule=self.gate.rule_text,
                time=self.clock.time(),
            )
            try:
                model, info = self._load_version(version)
            except Exception as exc:
                return self._reject(base, f"cannot load the candidate: {type(exc).__name__}: {exc}")
            try:
                if eval_data is None:
                    if serving is not None and serving.version != INITIAL:
                        return self._reject(base, "no held-out data to compare with")
                    result = GateResult(True, "no versioned model serves yet: first version")
                else:
                    result = self.gate.evaluate(
                        model, serving.model if serving else None, eval_data
                    )
            except Exception as exc:
                return self._reject(
                    base, f"cannot score the candidate: {type(exc).__name__}: {exc}"
                )
            decision = GateDecision(
                deployed=result.passed,
                reason=result.reason,
                candidate_scores=result.candidate_scores,
                serving_scores=result.serving_scores,
                values=result.values,
                n_eval=result.n_eval,
                **base,  # type: ignore[arg-type]
            )
            passed, reason = result.passed, result.reason
            self._report_eval(info, result.candidate_scores, serving, result.serving_scores)
            if passed:
                self._activate(version, model, str(info.path), decision)
            else:
                self.versions.mark_rejected(version)
                self.versions.record(decision)
                self.log.info(
                    "candidate rejected", version=version, reason=reason, values=result.values
                )
            self.last_decision = decision
            return decision

    def _report_eval(
        self,
        info: Any,
        cand: Mapping[str, float],
        serving: ServingModel | None,
        serv: Mapping[str, float],
    ) -> None:
        from sedna_core.reporting import model_result

        prefix = self.config.data_path_prefix
        results = [
            model_result(str(info.path), dict(cand), fmt=info.format, data_path_prefix=prefix)
        ]
        if serving is not None and serv:
            results.append(model_result(serving.source, dict(serv), data_path_prefix=prefix))
        self.report("eval", "completed", results=results)

    def _reject(self, base: Mapping[str, Any], reason: str) -> GateDecision:
        decision = GateDecision(deployed=False, reason=reason, **base)  # type: ignore[arg-type]
        if decision.candidate is not None:
            self.versions.mark_rejected(decision.candidate)
        self.versions.record(decision)
        self.report("deploy", "failed")
        self.log.warning("candidate rejected", version=decision.candidate, reason=reason)
        self.last_decision = decision
        return decision

    def _activate(
        self, version: str, model: BaseBackend, source: str, decision: GateDecision
    ) -> None:
        """Serve ``model`` (loaded completely already), record and announce it."""
        self._swap(ServingModel(version, model, source, self.clock.time()))
        self.versions.mark_deployed(version)
        self.versions.record(decision)
        self.report("deploy", "completed")
        self.announce(
            "sedna_model_deployed",
            job_name=self.config.job_name,
            version=version,
            metrics=dict(decision.candidate_scores),
        )
        self.log.info(
            "model deployed",
            version=version,
            kind=decision.kind,
            previous=decision.serving,
            reason=decision.reason,
        )
        self._export(source)

    def _export(self, source: str) -> None:
        """Copy the deployed model to MODEL_URL (a local folder or file) for Sedna's workers."""
        if not self.config.model_url or self.estimator is None:
            return
        from sedna_core.artifacts import is_remote, resolve_model_path

        try:
            target = resolve_model_path(self.config, self.estimator.default_model_file)
            if is_remote(target) or Path(target) == Path(source):
                return
            dest = Path(target)
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
            os.close(fd)
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        except Exception as exc:  # the deployment stands; exporting is a convenience
            self.log.warning("could not export the deployed model", error=str(exc))

    def deploy(self, version: str) -> GateDecision:
        """Serve a stored version now, without the gate (an operator's decision)."""
        return self._force(str(version), kind="deploy", reason="deployed on request")

    def rollback(self) -> GateDecision:
        """Go back to the previously deployed version (one call). Raises JobError when there
        is none or it cannot be loaded; the serving model then stays."""
        with self._deploy_lock:
            previous = self.versions.previous()
            current = self._slot.get()
            if previous is None:
                raise JobError("nothing to roll back to: fewer than two deployed versions")
            try:
                model, info = self._load_version(previous)
            except Exception as exc:
                raise JobError(f"cannot roll back to version {previous}: {exc}") from exc
            self.versions.mark_rolled_back()
            decision = GateDecision(
                kind="rollback",
                deployed=True,
                candidate=previous,
                serving=current.version if current else None,
                rule="",
                reason="rolled back on request",
                time=self.clock.time(),
            )
            self._swap(ServingModel(previous, model, str(info.path), self.clock.time()))
            self.versions.record(decision)
            self.report("deploy", "completed")
            self.announce(
                "sedna_model_deployed",
                job_name=self.config.job_name,
                version=previous,
                metrics=dict(info.metrics) if _numeric(info.metrics) else {},
            )
            self.log.info("rolled back", version=previous)
            self.last_decision = decision
            return decision

    def _force(self, version: str, *, kind: str, reason: str) -> GateDecision:
        with self._deploy_lock:
            current = self._slot.get()
            base = dict(
                kind=kind,
                candidate=version,
                serving=current.version if current else None,
                rule="",
                time=self.clock.time(),
            )
            try:
                model, info = self._load_version(version)
            except Exception as exc:
                return self._reject(base, f"cannot load: {type(exc).__name__}: {exc}")
            decision = GateDecision(deployed=True, reason=reason, **base)  # type: ignore[arg-type]
            self._activate(version, model, str(info.path), decision)
            self.last_decision = decision
            return decision

    def _hot_deploy(self, path: Path, label: str, source: str) -> bool:
        """A watcher found a new model: store it, load it beside the serving one, swap."""
        with self._deploy_lock:
            current = self._slot.get()
            base: dict[str, Any] = dict(
                kind="hot_update",
                candidate=None,
                serving=current.version if current else None,
                rule="",
                time=self.clock.time(),
            )
            try:
                info = self._store(path, metadata={"source": source, "model_update_time": label})
                base["candidate"] = info.version
                model = self._load_file(info.path)
            except Exception as exc:
                self._reject(
                    base, f"hot update {label} from {source} rejected: {type(exc).__name__}: {exc}"
                )
                return False
            decision = GateDecision(
                deployed=True, reason=f"hot update {label} from {source}", **base
            )
            self._activate(info.version, model, str(info.path), decision)
            self.last_decision = decision
            return True

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

    # -- inference --------------------------------------------------------------------------

    def inference(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> tuple[Any, Any, bool]:
        """Sedna's ``(infer_result, final_result, is_hard_example)`` for one sample.

        ``data`` is one sample as the model takes it (an image, or a batch of one row). One model
        reference serves the whole call. A hard sample goes to the hard-example store.
        """
        serving = self._serving()
        raw = serving.model.predict(data, **kwargs)
        final = post_process(copy.deepcopy(raw)) if callable(post_process) else raw
        is_hard = False
        if self.hem is not None:
            judged = serving.model.predict_proba(data) if self.mine_proba else final
            is_hard = bool(self.hem(judged))
        self._count(1, int(is_hard))
        if is_hard:
            sample = np.asarray(as_x(data))
            # a batch of one (sklearn's x[:1]) is stored as its row; anything else as one sample
            self._keep(
                sample if sample.ndim >= 1 and len(sample) == 1 else sample[None], serving.version
            )
        return raw, final, is_hard

    def inference_batch(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> BatchInference:
        """Predict a batch (samples along the first axis) and mine each sample.

        Returns a :class:`BatchInference` (``raw``, ``final``, ``is_hard``, ``version``,
        ``hard_ids``); one model version serves every sample of the call.
        """
        serving = self._serving()
        x = as_x(data)
        raw = serving.model.predict(x, **kwargs)
        final = post_process(copy.deepcopy(raw)) if callable(post_process) else raw
        n = _count(x)
        if self.hem is None:
            hard = np.zeros(n, dtype=bool)
        else:
            judged = serving.model.predict_proba(x) if self.mine_proba else final
            hard = np.asarray(self.hem.mine(judged), dtype=bool).reshape(-1)
            if len(hard) != n:
                raise JobError(f"the miner judged {len(hard)} samples of a batch of {n}")
        found = int(hard.sum())
        self._count(n, found)
        ids = self._keep(np.asarray(x)[hard], serving.version) if found else None
        if ids is None:
            return BatchInference(raw, final, hard, serving.version)
        return BatchInference(raw, final, hard, serving.version, ids)

    def _count(self, n: int, hard: int) -> None:
        with self._stats_lock:
            self.stats["inference_number"] += n
            self.stats["hard_example_number"] += hard
            stats = dict(self.stats)
        if hard:
            self.announce(
                "sedna_hard_example_found",
                job_name=self.config.job_name,
                count=hard,
                stats={k: float(v) for k, v in stats.items()},
            )

    def _keep(self, samples: Any, version: str) -> np.ndarray | None:
        """Store hard examples; inference goes on (and the loss is counted) if they cannot be."""
        if self.hard_examples is None:
            return None
        try:
            return self.hard_examples.add(samples, model_version=version)
        except (DataSourceError, OSError) as exc:
            with self._stats_lock:
                first = self.stats["unsaved_hard_examples"] == 0
                self.stats["unsaved_hard_examples"] += len(samples)
            if first:
                self.log.warning("hard examples not saved", error=str(exc))
            return None

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
        """Label the stored hard examples that have no label with ``labeller(x) -> y``."""
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
        gate on ``eval_data``. The store is marked, so the trigger counts from zero again."""
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


def _count(data: Any) -> int:
    x = as_x(data) if not isinstance(data, tuple) else data[0]
    try:
        return len(x)
    except TypeError:
        return 1


def _numeric(metrics: Any) -> bool:
    return isinstance(metrics, Mapping) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    )


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
