"""Model versions of an incremental-learning job: the artifact store plus a deployment ledger.

Under the job's workspace::

    store/             the artifact store (every trained or pushed model, with its metrics)
    deployments.json   serving version, the deployment history (for rollback), rejected versions
    decisions.jsonl    one line per decision (gate, hot update, deploy, rollback) with both scores

Rejected candidates stay in the store for inspection; ``deployments.json`` says which they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sedna_core.artifacts import ArtifactInfo, ArtifactStore
from sedna_core.clock import Clock
from sedna_core.errors import ArtifactError
from sedna_core.jobs.incremental._gate import GateDecision

__all__ = ["ModelVersions"]


def _jsonable(value: Any) -> Any:
    for attr in ("item", "tolist"):
        if callable(getattr(value, attr, None)):
            return getattr(value, attr)()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


class ModelVersions:
    """Versions of one model name, which one serves, and why.

    Parameters
    ----------
    workspace
        The job's directory (created if missing).
    name
        Artifact name of the model in the store.
    clock
        Timestamps of versions and decisions.
    """

    def __init__(self, workspace: str | os.PathLike[str], name: str, *, clock: Clock) -> None:
        self.workspace = Path(workspace)
        self.workspace.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.store = ArtifactStore(self.workspace / "store", clock=clock)
        self._state_path = self.workspace / "deployments.json"
        self._log_path = self.workspace / "decisions.jsonl"
        self._lock = threading.RLock()
        self._state = self._read_state()

    # -- state ------------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        if not self._state_path.exists():
            return {"name": self.name, "history": [], "rejected": []}
        try:
            doc = json.loads(self._state_path.read_text(encoding="utf-8"))
            return {
                "name": self.name,
                "history": [str(v) for v in doc.get("history", [])],
                "rejected": [str(v) for v in doc.get("rejected", [])],
            }
        except (OSError, ValueError, TypeError) as exc:
            raise ArtifactError(
                f"{self._state_path} is unreadable ({exc}); restore it or remove it to start "
                "with no deployed version"
            ) from exc

    def _write_state(self) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".deployments.", dir=self.workspace)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self._state, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self._state_path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    @property
    def serving(self) -> str | None:
        """The deployed version, or None."""
        with self._lock:
            history = self._state["history"]
            return history[-1] if history else None

    @property
    def history(self) -> list[str]:
        """Deployed versions, oldest first (the last one serves)."""
        with self._lock:
            return list(self._state["history"])

    @property
    def rejected(self) -> list[str]:
        """Versions the gate (or loading) refused, oldest first."""
        with self._lock:
            return list(self._state["rejected"])

    def mark_deployed(self, version: str) -> None:
        with self._lock:
            self._state["history"].append(str(version))
            self._write_state()

    def mark_rejected(self, version: str) -> None:
        with self._lock:
            if str(version) not in self._state["rejected"]:
                self._state["rejected"].append(str(version))
                self._write_state()

    def previous(self) -> str | None:
        """The version a rollback returns to."""
        with self._lock:
            history = self._state["history"]
            return history[-2] if len(history) > 1 else None

    def mark_rolled_back(self) -> str:
        """Drop the serving version from the history; returns the version now serving."""
        with self._lock:
            history = self._state["history"]
            if len(history) < 2:
                raise ArtifactError("nothing to roll back to: fewer than two deployed versions")
            history.pop()
            self._write_state()
            return history[-1]

    # -- versions ---------------------------------------------------------------------------

    def add(
        self,
        file: str | os.PathLike[str],
        *,
        format: str,
        metrics: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ArtifactInfo:
        """Store a model file as a new version."""
        return self.store.put(
            self.name, file, format=format, metrics=_numbers(metrics), metadata=metadata
        )

    def get(self, version: str) -> ArtifactInfo:
        """A version's record, its file verified against its digest."""
        return self.store.get(self.name, version)

    def versions(self) -> list[ArtifactInfo]:
        return self.store.versions(self.name)

    # -- decisions --------------------------------------------------------------------------

    def record(self, decision: GateDecision) -> None:
        """Append a decision to ``decisions.jsonl`` (flushed and fsynced)."""
        line = json.dumps(decision.to_dict(), default=_jsonable, allow_nan=True)
        with self._lock, open(self._log_path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def decisions(self) -> list[GateDecision]:
        """Every recorded decision, oldest first (a torn last line is skipped)."""
        if not self._log_path.exists():
            return []
        out = []
        with self._lock:
            for line in self._log_path.read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    out.append(GateDecision.from_dict(json.loads(line)))
        return out


def _numbers(metrics: Mapping[str, Any] | None) -> dict[str, Any]:
    """Metrics as the store keeps them: what is JSON-friendly (histories as lists)."""
    if not metrics:
        return {}
    if not isinstance(metrics, Mapping):
        return {"result": str(metrics)}
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        try:
            json.dumps(v, default=_jsonable)
            out[str(k)] = v
        except (TypeError, ValueError):
            out[str(k)] = repr(v)
    return out
