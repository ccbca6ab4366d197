"""Model versions in and out of service for ``IncrementalLearning``: loading and storing
versions, the serving slot (first use included), the deploy gate's decisions, operator
deploys and rollbacks, hot updates from watchers, and the export to ``MODEL_URL``."""

from __future__ import annotations

import copy
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sedna_core.algorithms import BaseBackend
from sedna_core.algorithms.backend import is_factory
from sedna_core.datasources import as_x
from sedna_core.errors import ArtifactError, ConfigError, JobError
from sedna_core.jobs.incremental._gate import GateDecision, GateResult
from sedna_core.jobs.incremental._hot_update import ServingModel

__all__ = ["INITIAL", "ModelDeployment"]

#: the version name of the estimator given to the constructor, before any version is deployed
INITIAL = "initial"


class ModelDeployment:
    """Which model version serves, and how one comes to serve.

    Part of :class:`~sedna_core.jobs.incremental.IncrementalLearning` (``_job.py``), which
    holds the state these methods use.
    """

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

    # -- gate, deploy, rollback ------------------------------------------------------------

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
        stays. The decision is recorded, reported (``eval``, then ``deploy``) and returned.

        Parameters
        ----------
        version
            The stored version to judge (as :attr:`last_trained` or ``versions`` name it).
        eval_data
            Held-out data both models are scored on (None: a first version is deployed
            without comparison; any later one is rejected).

        Returns
        -------
        GateDecision
            The decision: ``deployed``, the ``reason``, both models' scores and the rule's
            values.
        """
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
        try:
            self._copy_to_model_url(source)
        except Exception as exc:  # the deployment stands; exporting is a convenience
            self.log.warning("could not export the deployed model", error=str(exc))

    def _model_url_target(self, source: str | os.PathLike[str]) -> Path | None:
        """Where a model file goes under ``MODEL_URL`` (Sedna's model path: the file itself,
        or ``MODEL_URL/<MODEL_NAME or the backend's file name>``, keeping the file's suffix);
        None without a local ``MODEL_URL``."""
        if not self.config.model_url or self.estimator is None:
            return None
        from sedna_core.artifacts import is_remote, resolve_model_path

        default = self.estimator.default_model_file
        suffix = Path(source).suffix
        if suffix and not Path(default).suffix:
            default += suffix
        target = resolve_model_path(self.config, default)
        return None if is_remote(target) else Path(target)

    def _copy_to_model_url(self, source: str | os.PathLike[str]) -> Path | None:
        """Copy ``source`` to its place under ``MODEL_URL`` atomically; the file, or None."""
        dest = self._model_url_target(source)
        if dest is None or dest == Path(source):
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            os.replace(tmp, dest)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return dest

    def deploy(self, version: str) -> GateDecision:
        """Serve a stored version now, without the gate (an operator's decision).

        Parameters
        ----------
        version
            The stored version to serve.

        Returns
        -------
        GateDecision
            The recorded decision (``kind="deploy"``; ``deployed`` False when the version
            could not be loaded, the serving model then stays).
        """
        return self._force(str(version), kind="deploy", reason="deployed on request")

    def rollback(self) -> GateDecision:
        """Go back to the previously deployed version (one call). Raises JobError when there
        is none or it cannot be loaded; the serving model then stays.

        Returns
        -------
        GateDecision
            The recorded decision (``kind="rollback"``, ``candidate`` the version now served).
        """
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


def _numeric(metrics: Any) -> bool:
    return isinstance(metrics, Mapping) and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in metrics.values()
    )
