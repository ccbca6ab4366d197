"""Serving a model that can be replaced while requests run, and the watchers that replace it.

:class:`ModelSlot` holds the serving model as one immutable :class:`ServingModel` reference.
An inference call takes the reference once and uses it for its whole duration; a swap replaces
the reference under a lock, only after the new model was loaded completely beside the old one.
So no call ever runs on a half-loaded model or mixes two versions, and a model that fails to
load never becomes current.

Watchers poll for new models on the injectable clock (``MODEL_POLL_PERIOD_SECONDS``) in daemon
threads, so they never keep the process alive:

- :class:`HotUpdateConfigWatcher`: Sedna's ``MODEL_HOT_UPDATE_CONFIG``, a JSON file (path or
  URL) ``{"model_config": {"model_path": ..., "model_update_time": ...}}``; a new
  ``model_update_time`` means a new model at ``model_path``.
- :class:`ModelDirectoryWatcher`: the newest model file in a directory (hidden and
  ``.tmp``/``.part`` files are ignored, so writers can rename a finished file into place).
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from sedna_core.clock import Clock, SystemClock
from sedna_core.errors import ArtifactError, ConfigError, JobError
from sedna_core.log import get_logger

__all__ = [
    "HotUpdateConfigWatcher",
    "ModelDirectoryWatcher",
    "ModelSlot",
    "ModelWatcher",
    "ServingModel",
    "read_hot_update_config",
]

log = get_logger(__name__)

#: ``deploy(local_file, version_label, source) -> bool``: load, check and swap a pushed model
DeployFn = Callable[[Path, str, str], bool]


@attrs.frozen(eq=False)
class ServingModel:
    """The model in service: a loaded backend and the version it came from."""

    version: str
    model: Any
    source: str = ""
    loaded_at: float = 0.0


class ModelSlot:
    """The current :class:`ServingModel`, replaced atomically."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: ServingModel | None = None
        self._swaps = 0

    def get(self) -> ServingModel | None:
        """The serving model (one reference: keep it for the whole call), or None."""
        with self._lock:
            return self._current

    def require(self) -> ServingModel:
        current = self.get()
        if current is None:
            raise JobError(
                "no model is being served: train one, deploy a stored version, or give a "
                "fitted estimator or MODEL_URL"
            )
        return current

    def swap(self, new: ServingModel) -> ServingModel | None:
        """Make ``new`` current (it must be fully loaded); returns the previous one."""
        with self._lock:
            old, self._current = self._current, new
            self._swaps += 1
            return old

    @property
    def swaps(self) -> int:
        with self._lock:
            return self._swaps


class ModelWatcher(abc.ABC):
    """Polls for a new model every ``period`` seconds of ``clock`` time in a daemon thread.

    With the system clock :meth:`stop` interrupts the wait; with a
    :class:`~sedna_core.clock.ManualClock` the thread wakes when the test advances the clock.
    Polls fall on ``start + k * period``; polls missed while one ran long are skipped.
    """

    def __init__(self, deploy: DeployFn, *, period: float, clock: Clock | None = None) -> None:
        if not period > 0:
            raise ConfigError("MODEL_POLL_PERIOD_SECONDS", period, "a number greater than 0")
        self._deploy = deploy
        self.period = float(period)
        self.clock = clock or SystemClock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._polls = 0
        self._last_error: str | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        due = self.clock.monotonic() + self.period  # fixed now, so an early advance() counts
        self._thread = threading.Thread(
            target=self._run, args=(due,), name=type(self).__name__, daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Stop polling; waits up to ``timeout`` for the thread when the clock is real."""
        self._stop.set()
        thread = self._thread
        if thread is not None and isinstance(self.clock, SystemClock):
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stop.is_set()

    @property
    def polls(self) -> int:
        """Polls completed so far."""
        with self._cond:
            return self._polls

    def wait_for_polls(self, n: int, timeout: float = 10.0) -> bool:
        """Block until ``n`` polls have completed (an event, not a sleep); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._polls >= n, timeout)

    def _run(self, due: float) -> None:
        while not self._stop.is_set():
            delay = due - self.clock.monotonic()
            if delay > 0:
                if isinstance(self.clock, SystemClock):
                    if self._stop.wait(delay):
                        break
                else:  # absolute: an advance() since `delay` was read is not lost
                    self.clock.sleep_until(due)
                    if self._stop.is_set():
                        break
            self.poll()
            now = self.clock.monotonic()
            due += self.period
            while due <= now:
                due += self.period

    def poll(self) -> bool:
        """Check once; deploy what is new. Returns whether a model was deployed.

        Errors (unreachable config, bad JSON, failed download) are logged once per distinct
        message and never end the watcher.
        """
        deployed = False
        try:
            deployed = self._check()
            self._last_error = None
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            if message != self._last_error:
                log.warning("hot update check failed", watcher=type(self).__name__, error=message)
            self._last_error = message
        finally:
            with self._cond:
                self._polls += 1
                self._cond.notify_all()
        return deployed

    @abc.abstractmethod
    def _check(self) -> bool:
        """Look for a new model and hand it to the deploy function."""


def read_hot_update_config(path: str | os.PathLike[str]) -> tuple[str, str]:
    """The ``(model_path, model_update_time)`` from Sedna's hot-update JSON file.

    Parameters
    ----------
    path
        The JSON file: ``{"model_config": {"model_path": ..., "model_update_time": ...}}``.

    Returns
    -------
    tuple[str, str]
        The model's path or URL, and its update time as a string (the version).

    Raises
    ------
    ArtifactError
        The file cannot be read or lacks these fields.
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        cfg = doc["model_config"]
        model_path, version = cfg["model_path"], cfg["model_update_time"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"hot-update config {os.fspath(path)!r} is not "
            '{"model_config": {"model_path": ..., "model_update_time": ...}}: '
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(model_path, str) or not model_path:
        raise ArtifactError(
            f"hot-update config: model_path must be a path or URL, not {model_path!r}"
        )
    return model_path, str(version)


class HotUpdateConfigWatcher(ModelWatcher):
    """Sedna's hot update: a JSON file says where the latest model is and which version it is.

    Parameters
    ----------
    config_url
        Path or URL (file://, http(s)://, s3://) of the JSON file (``MODEL_HOT_UPDATE_CONFIG``).
    deploy
        Called with the downloaded model file, its version and its URL.
    period, clock
        Poll period (``MODEL_POLL_PERIOD_SECONDS``) and time source.
    """

    def __init__(
        self,
        config_url: str,
        deploy: DeployFn,
        *,
        period: float,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(deploy, period=period, clock=clock)
        self.config_url = config_url
        self.last_version: str | None = None

    def _check(self) -> bool:
        from sedna_core.artifacts import fetch

        # every download goes to a private directory removed after the poll: nothing leaks
        with tempfile.TemporaryDirectory(prefix="sedna-hot-update-") as tmp:
            local_cfg = fetch(self.config_url, Path(tmp) / "hot_update_config.json")
            model_url, version = read_hot_update_config(local_cfg)
            if version == self.last_version:
                return False
            name = Path(model_url.rstrip("/")).name or "model"
            local_model = fetch(model_url, Path(tmp) / "model" / name)
            self.last_version = version  # tried once per version, deployed or rejected
            return self._deploy(local_model, version, model_url)


class ModelDirectoryWatcher(ModelWatcher):
    """Deploys the newest model file that appears in ``directory``.

    A file is identified by name, size and modification time; a changed identity means a new
    model. Write elsewhere and rename into place; a file caught half-written fails to load, is
    rejected, and is tried again once it changes.
    """

    IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".lock")

    def __init__(
        self,
        directory: str | os.PathLike[str],
        deploy: DeployFn,
        *,
        period: float,
        clock: Clock | None = None,
        pattern: str = "*",
    ) -> None:
        super().__init__(deploy, period=period, clock=clock)
        self.directory = Path(directory)
        self.pattern = pattern
        self.last_seen: tuple[str, int, int] | None = None

    def newest(self) -> tuple[Path, tuple[str, int, int]] | None:
        best: tuple[Path, tuple[str, int, int]] | None = None
        with contextlib.suppress(FileNotFoundError):
            for p in self.directory.glob(self.pattern):
                if p.name.startswith(".") or p.name.endswith(self.IGNORED_SUFFIXES):
                    continue
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                if not p.is_file():
                    continue
                ident = (p.name, st.st_size, st.st_mtime_ns)
                if best is None or (st.st_mtime_ns, p.name) > (best[1][2], best[1][0]):
                    best = (p, ident)
        return best

    def _check(self) -> bool:
        found = self.newest()
        if found is None or found[1] == self.last_seen:
            return False
        path, ident = found
        self.last_seen = ident
        with tempfile.TemporaryDirectory(prefix="sedna-model-dir-") as tmp:
            # a private copy: the writer may replace the file while it is being loaded
            local = Path(tmp) / path.name
            shutil.copyfile(path, local)
            version = f"{path.name}@{ident[2]}"
            return self._deploy(local, version, str(path))
