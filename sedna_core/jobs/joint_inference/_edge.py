"""The edge side of joint inference: ``JointInference``."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from sedna_core.clock import Clock
from sedna_core.config.joint_inference import (
    MINING_THEN_INFERENCE,
    JointInferenceConfig,
    to_mining_mode,
)
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.joint_inference._breaker import CircuitBreaker
from sedna_core.jobs.joint_inference._calibration import (
    Calibration,
    calibrate_threshold,
    check_calibratable,
    correct_answers,
)
from sedna_core.jobs.joint_inference._cloud import CloudClient, CloudReply
from sedna_core.jobs.joint_inference._protocol import (
    as_numeric_array,
    check_job_name,
)
from sedna_core.jobs.joint_inference._stats import InferenceStats, StatsCounter

__all__ = ["JointInference"]

HEM_KIND = "hard_example_mining"
HARD_EXAMPLE_HOOK = "sedna_hard_example_found"


class _Edge:
    """A step of an inference plan: run the edge model on ``data`` (``proba``: its
    ``predict_proba``, for a miner that judges probabilities; None when it has none)."""

    __slots__ = ("data", "kwargs", "proba")

    def __init__(self, data: Any, kwargs: dict[str, Any], proba: bool = False) -> None:
        self.data = data
        self.kwargs = kwargs
        self.proba = proba


class _Cloud:
    """A step of an inference plan: send ``data`` (``expected`` samples, or one request)."""

    __slots__ = ("data", "expected")

    def __init__(self, data: Any, expected: int | None) -> None:
        self.data = data
        self.expected = expected


Plan = Generator[_Edge | _Cloud, Any, list[Any]]


class JointInference(JobBase):
    """Edge inference that sends hard examples to a big model in the cloud (Sedna's paradigm).

    Parameters
    ----------
    estimator
        The edge model (instance, class or factory; any backend). Loaded from ``model_path``
        or ``MODEL_URL`` when one is given, else used as it is.
    hard_example_mining
        The miner: ``"Confidence"``, ``{"method": "IBT", "param": {...}}`` (a mapping without
        ``method`` means IBT, as in Sedna), a miner class or instance. Default: ``HEM_NAME`` /
        ``HEM_PARAMETERS``; without either nothing is hard (edge only).
    config
        A :class:`~sedna_core.config.joint_inference.JointInferenceConfig`; by default read
        from the environment. The keyword arguments below override it.
    big_model_ip, big_model_port, cloud_url
        Where the big-model service is (``BIG_MODEL_IP``/``BIG_MODEL_PORT``; ``cloud_url`` such
        as ``https://cloud:5000`` wins over both).
    mining_mode
        ``"inference-then-mining"`` (default: the miner judges the edge result) or
        ``"mining-then-inference"`` (the miner judges the raw input; hard inputs skip the edge).
    cloud_timeout
        Seconds to wait for the cloud before answering from the edge (default 1).
    token
        Bearer token of the big-model service (``SEDNA_TOKEN``).
    job_name
        The service's name, the URL segment of its API (``JOB_NAME``, default ``sedna``).
    model_path
        Model file to load into ``estimator``.
    backend, plugin_manager, clock
        See :class:`~sedna_core.jobs._base.JobBase`.

    Notes
    -----
    When the cloud fails, times out or is skipped by the open circuit breaker, the edge result is
    the answer; the failure is counted and logged once per outage. Counters are in
    :attr:`stats`, announced through the ``sedna_hard_example_found`` hook and, when
    ``LC_SERVER`` is set, reported every ``LC_PERIOD`` seconds in Sedna's ``ownerInfo`` shape.
    """

    job_kind = "jointinferenceservice"
    #: samples per cloud request when :meth:`calibrate` asks the cloud (bounded request size)
    CALIBRATION_CHUNK = 256

    def __init__(
        self,
        estimator: Any = None,
        hard_example_mining: Any = None,
        *,
        config: JointInferenceConfig | None = None,
        big_model_ip: str | None = None,
        big_model_port: int | None = None,
        cloud_url: str | None = None,
        mining_mode: str | None = None,
        cloud_timeout: float | None = None,
        token: str | None = None,
        job_name: str | None = None,
        model_path: str | None = None,
        backend: str | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if mining_mode is not None:
            try:
                mining_mode = to_mining_mode(mining_mode)
            except ValueError:
                raise ConfigError("mining_mode", mining_mode, to_mining_mode.accepted) from None
        if cloud_timeout is not None and not cloud_timeout > 0:
            raise ConfigError("cloud_timeout", cloud_timeout, "a number of seconds > 0")
        explicit = {
            "big_model_ip": big_model_ip,
            "big_model_port": big_model_port,
            "big_model_url": cloud_url,
            "mining_mode": mining_mode,
            "cloud_timeout": cloud_timeout,
            "token": token,
            "job_name": job_name,
        }
        if config is None:
            config = JointInferenceConfig.from_env(**explicit)
        else:
            config = attrs.evolve(config, **{k: v for k, v in explicit.items() if v is not None})
        check_job_name(config.job_name)
        super().__init__(
            estimator, config=config, backend=backend, plugin_manager=plugin_manager, clock=clock
        )
        self.config: JointInferenceConfig = config
        self.mining_mode = config.mining_mode
        self._load_model(model_path)
        self.hard_example_mining = self._make_miner(hard_example_mining)
        if self.mining_mode == MINING_THEN_INFERENCE and self.hard_example_mining is None:
            raise ConfigError(
                "HEM_NAME", None, "a hard-example miner: mining-then-inference needs one"
            )
        self.breaker = CircuitBreaker(
            config.breaker_failures, config.breaker_cooldown, clock=self.clock
        )
        self.cloud = CloudClient(
            config.cloud_base_url,
            config.job_name,
            timeout=config.cloud_timeout,
            wire_format=config.wire,
            breaker=self.breaker,
            log=self.log,
            token=config.token,
            ca_file=config.tls_ca,
        )
        self._no_proba = False
        self._counter = StatsCounter()
        self._start_time = self.clock.time()
        self._reported_version = 0
        self._report_lock = threading.Lock()
        self.announce(
            "sedna_job_started",
            job_kind=self.job_kind,
            job_name=config.job_name,
            info={
                "cloud": config.cloud_base_url,
                "mining_mode": self.mining_mode,
                "hard_example_mining": repr(self.hard_example_mining),
            },
        )
        if self.reporter.enabled:
            threading.Thread(
                target=self._report_periodically, name="sedna-ji-lc-report", daemon=True
            ).start()

    # -- construction helpers ------------------------------------------------------------------
    def _load_model(self, model_path: str | None) -> None:
        if self.estimator is None:
            return
        path = model_path
        if path is None and self.config.model_url:
            from sedna_core.artifacts import resolve_model_path

            path = resolve_model_path(self.config, self.estimator.default_model_file)
        if path is not None:
            self.estimator.load(path)

    def _make_miner(self, spec: Any) -> Any:
        if spec is None:
            if not self.config.hem_name:
                return None
            spec = {"method": self.config.hem_name, "param": self.config.hem_parameters}
        elif isinstance(spec, Mapping) and spec.get("method") is None and not spec.get("name"):
            spec = {**spec, "method": "IBT"}  # Sedna's default method
        from sedna_core.plugins import create_algorithm

        return create_algorithm(HEM_KIND, spec, plugin_manager=self.plugin_manager)

    # -- public API ----------------------------------------------------------------------------
    @property
    def stats(self) -> InferenceStats:
        """The counters now (samples inferred, hard, answered by the cloud, failed over)."""
        return self._counter.snapshot()[0]

    def inference(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """Infer one request: ``[is_hard_example, final_result, edge_result, cloud_result]``.

        ``data`` is one request as the edge model takes it; the miner judges the (post-processed)
        edge result as a whole (``mining-then-inference``: the raw ``data``), and a hard request
        goes to the cloud as it is. ``cloud_result`` is the cloud's ``result`` (None when it was
        not asked or did not answer); ``final_result`` is it when present, else the edge's.

        Parameters
        ----------
        data
            One request, as the edge model takes it.
        post_process
            Applied to the edge model's result before mining (None: the result as it is).
        **kwargs
            Passed to the edge model's ``predict``.

        Returns
        -------
        list
            Sedna's ``[is_hard_example, final_result, edge_result, cloud_result]``.
        """
        return self._run(self._plan_one(data, post_process, kwargs))

    def inference_batch(
        self, samples: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """Infer a batch (samples along the first axis), judging each sample.

        Only the hard samples go to the cloud, in one request. Returns
        ``[is_hard_example, final_result, edge_result, cloud_result]`` in the samples' order:
        ``is_hard_example`` a boolean array; ``final_result`` an array when the edge and cloud
        rows have the same shape (else a list); ``edge_result`` what the edge model returned
        (``mining-then-inference``: a list with None for samples the edge did not see);
        ``cloud_result`` a list with the cloud's row or None per sample.

        Parameters
        ----------
        samples
            The batch, samples along the first axis.
        post_process
            Applied to the edge model's result before mining (None: the result as it is).
        **kwargs
            Passed to the edge model's ``predict``.

        Returns
        -------
        list
            ``[is_hard_example, final_result, edge_result, cloud_result]``, as above.
        """
        return self._run(self._plan_batch(samples, post_process, kwargs))

    async def ainference(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """:meth:`inference` for coroutines (the edge model runs in a worker thread).

        Parameters
        ----------
        data
            One request, as the edge model takes it.
        post_process
            Applied to the edge model's result before mining (None: the result as it is).
        **kwargs
            Passed to the edge model's ``predict``.

        Returns
        -------
        list
            Sedna's ``[is_hard_example, final_result, edge_result, cloud_result]``.
        """
        return await self._arun(self._plan_one(data, post_process, kwargs))

    async def ainference_batch(
        self, samples: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> list[Any]:
        """:meth:`inference_batch` for coroutines (the edge model runs in a worker thread).

        Parameters
        ----------
        samples
            The batch, samples along the first axis.
        post_process
            Applied to the edge model's result before mining (None: the result as it is).
        **kwargs
            Passed to the edge model's ``predict``.

        Returns
        -------
        list
            ``[is_hard_example, final_result, edge_result, cloud_result]``, as
            :meth:`inference_batch` returns it.
        """
        return await self._arun(self._plan_batch(samples, post_process, kwargs))

    def calibrate(
        self,
        x_val: Any,
        y_val: Any,
        *,
        target_offload: float | None = None,
        max_accuracy_loss: float | None = None,
        mode: str = "point",
        delta: float = 0.1,
        relative: bool = True,
        miner: Any = None,
        cloud_results: Any = None,
        correct: Callable[[Any, Any], Any] | None = None,
        post_process: Callable[[Any], Any] | None = None,
        apply: bool = True,
    ) -> Calibration:
        """Choose the miner's threshold from labelled validation data, and use it.

        The edge model answers ``x_val``; the cloud answers it too (in requests of
        ``CALIBRATION_CHUNK`` samples; or pass its answers as ``cloud_results``); ``correct(results,
        y_val)`` says which answers are right (default: vectors by their argmax index, scalars as
        they are). Then :func:`~sedna_core.jobs.joint_inference.calibrate_threshold` picks the
        threshold for the target: ``target_offload`` (a share of samples for the cloud), or
        ``max_accuracy_loss`` against cloud-only accuracy on the same samples (``relative``: as
        a fraction of it) as a point estimate (``mode="point"``) or guaranteed with probability
        >= 1 - ``delta`` (``mode="guaranteed"``, for serving data exchangeable with
        ``x_val``). ``miner`` (default: the job's) is calibrated; with ``apply`` the job uses
        the result from now on. See "Calibration" in docs/joint-inference.md.

        Parameters
        ----------
        x_val, y_val
            Labelled validation data (samples along the first axis) and its labels.
        target_offload, max_accuracy_loss, mode, delta, relative
            The target, as :func:`~sedna_core.jobs.joint_inference.calibrate_threshold` takes it.
        miner
            The miner to calibrate (None: the job's ``hard_example_mining``).
        cloud_results
            The cloud's answers for ``x_val`` (None: ask the cloud).
        correct
            ``correct(results, y_val)``: one boolean per sample (None: the default rule above).
        post_process
            Applied to the edge model's result before judging it (None: as it is).
        apply
            Whether the job uses the calibrated miner from now on.

        Returns
        -------
        Calibration
            The calibrated miner and the figures it reached on the validation data.
        """
        base = miner if miner is not None else self.hard_example_mining
        if base is None:
            raise ConfigError("hard_example_mining", None, "a miner to calibrate (e.g. Confidence)")
        base = check_calibratable(self._make_miner(base) if miner is not None else base)
        n = _count_samples(x_val)
        post = _post_processor(post_process)
        edge = post(self._edge_predict(_Edge(x_val, {})))
        if self.mining_mode == MINING_THEN_INFERENCE:
            view = x_val
        else:
            view = edge
            if getattr(base, "needs_probabilities", False) and not _probability_like(edge, True):
                proba = self._edge_proba(x_val, {})
                view = edge if proba is None else proba
        if cloud_results is None:
            cloud_results = self._cloud_answers(x_val, n)
        judge = correct if correct is not None else correct_answers
        result = calibrate_threshold(
            base,
            view,
            judge(edge, y_val),
            judge(cloud_results, y_val),
            target_offload=target_offload,
            max_accuracy_loss=max_accuracy_loss,
            mode=mode,
            delta=delta,
            relative=relative,
            plugin_manager=self.plugin_manager,
            log=self.log,
        )
        if apply:
            self.hard_example_mining = result.miner
        self.log.info(
            "miner calibrated" if apply else "miner calibrated (not applied)",
            miner=result.miner.name,
            params=result.params,
            validation_offload=round(result.offload, 4),
            validation_accuracy=round(result.accuracy, 4),
            cloud_accuracy=round(result.cloud_accuracy, 4),
            mode=result.mode or result.target,
        )
        return result

    def _cloud_answers(self, x_val: Any, n: int) -> list[Any]:
        """The cloud's answers for every validation sample, in requests of a bounded size."""
        rows: list[Any] = []
        for lo in range(0, n, self.CALIBRATION_CHUNK):
            idx = np.arange(lo, min(lo + self.CALIBRATION_CHUNK, n))
            reply = self.cloud.call(_take(x_val, idx), int(idx.size))
            if not reply.ok:
                raise JobError(
                    "calibration needs the cloud's answers on the validation data and the cloud "
                    "did not answer (see the warning above): start the BigModelService, or pass "
                    "its answers as cloud_results="
                )
            rows.extend(list(reply.result))
        return rows

    def report_stats(self) -> None:
        """Send the counters to the local controller now (if any changed since the last send)."""
        stats, version = self._counter.snapshot()
        with self._report_lock:
            if version == self._reported_version:
                return
            self._reported_version = version
        owner_info = stats.owner_info(self._start_time, self.clock.time())
        self.report("inference", None, results=[], owner_info=owner_info)

    def close(self) -> None:
        """Send the last counters, close the cloud client and the reporter."""
        if self._closed:
            return
        self.report_stats()
        self.cloud.close()
        super().close()

    async def aclose(self) -> None:
        """:meth:`close`, also closing the cloud client of the running event loop."""
        await self.cloud.aclose()
        await asyncio.to_thread(self.close)

    # -- drivers: the same plans, run blocking or awaited ----------------------------------------
    def _run(self, plan: Plan) -> list[Any]:
        reply: Any = None
        try:
            while True:
                step = plan.send(reply)
                if isinstance(step, _Edge):
                    reply = self._edge_predict(step)
                else:
                    reply = self.cloud.call(step.data, step.expected)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def _arun(self, plan: Plan) -> list[Any]:
        reply: Any = None
        try:
            while True:
                step = plan.send(reply)
                if isinstance(step, _Edge):
                    reply = await asyncio.to_thread(self._edge_predict, step)
                else:
                    reply = await self.cloud.acall(step.data, step.expected)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _edge_predict(self, step: _Edge) -> Any:
        if self.estimator is None:
            raise JobError("JointInference has no estimator to infer on the edge; pass one")
        if step.proba:
            return self._edge_proba(step.data, step.kwargs)
        return self.estimator.predict(step.data, **step.kwargs)

    def _edge_proba(self, data: Any, kwargs: dict[str, Any]) -> Any:
        """The backend's ``predict_proba``, or None when it has none (remembered)."""
        from sedna_core.errors import BackendError

        try:
            try:
                return self.estimator.predict_proba(data, **kwargs)
            except TypeError:
                if not kwargs:
                    raise
                return self.estimator.predict_proba(data)  # predict's options may not apply
        except BackendError:
            self._no_proba = True  # the miner warns, once, about what it gets instead
            return None

    def _wants_proba(self, processed: Any, batch: bool) -> bool:
        """Whether the miner needs probabilities that the (post-processed) edge result is not:
        labels from scikit-learn's ``predict``, logits from a network."""
        miner = self.hard_example_mining
        if not getattr(miner, "needs_probabilities", False) or self._no_proba:
            return False
        return not _probability_like(processed, batch)

    # -- plans: what to do, independent of how calls are made ---------------------------------
    def _plan_one(
        self, data: Any, post_process: Callable[[Any], Any] | None, kwargs: dict[str, Any]
    ) -> Plan:
        post = _post_processor(post_process)
        miner = self.hard_example_mining
        edge_result = cloud_result = None
        if self.mining_mode == MINING_THEN_INFERENCE:
            is_hard = bool(miner(data))
            final = None
        else:
            edge_result = yield _Edge(data, kwargs)
            final = post(edge_result)
            view = final
            if miner is not None and self._wants_proba(final, batch=False):
                proba = yield _Edge(data, kwargs, proba=True)
                view = _single(proba) if proba is not None else final
            is_hard = bool(miner(view)) if miner is not None else False
        ok = failed = 0
        if is_hard:
            reply: CloudReply = yield _Cloud(data, None)
            if reply.ok:
                cloud_result = final = reply.result
                ok = 1
            else:
                failed = 1
        if self.mining_mode == MINING_THEN_INFERENCE and not ok:  # the edge answers after all
            edge_result = yield _Edge(data, kwargs)
            final = post(edge_result)
        self._count(1, int(is_hard), ok, failed)
        return [is_hard, final, edge_result, cloud_result]

    def _plan_batch(
        self, samples: Any, post_process: Callable[[Any], Any] | None, kwargs: dict[str, Any]
    ) -> Plan:
        post = _post_processor(post_process)
        miner = self.hard_example_mining
        n = _count_samples(samples)
        if n == 0:
            return [np.zeros(0, dtype=bool), [], [], []]
        cloud_rows: list[Any] = [None] * n
        first = self.mining_mode == MINING_THEN_INFERENCE
        if first:
            is_hard = _decisions(miner.mine(samples), n)
        else:
            edge_result = yield _Edge(samples, kwargs)
            processed = post(edge_result)
            view = processed
            if miner is not None and self._wants_proba(processed, batch=True):
                proba = yield _Edge(samples, kwargs, proba=True)
                view = processed if proba is None else proba
            is_hard = (
                _decisions(miner.mine(view), n) if miner is not None else np.zeros(n, dtype=bool)
            )
        hard = np.flatnonzero(is_hard)
        reply = CloudReply(False)
        if hard.size:
            # all hard (cloud-only routing): send the samples as they are, no gather copy
            up = samples if hard.size == n else _take(samples, hard)
            reply = yield _Cloud(up, int(hard.size))
            if reply.ok:
                _scatter(cloud_rows, hard, reply.result)
        parts: list[tuple[np.ndarray, Any]] = []
        if first:
            edge_idx = np.flatnonzero(~is_hard) if reply.ok else np.arange(n)
            edge_result = [None] * n
            if edge_idx.size:
                sub = yield _Edge(_take(samples, edge_idx), kwargs)
                _scatter(edge_result, edge_idx, sub)
                parts.append((edge_idx, post(sub)))
        else:
            parts.append((np.arange(n), processed))
        if reply.ok:
            parts.append((hard, reply.result))
        final = _assemble(n, parts)
        ok = int(hard.size) if reply.ok else 0
        self._count(n, int(hard.size), ok, int(hard.size) - ok)
        return [is_hard, final, edge_result, cloud_rows]

    def _count(self, samples: int, hard: int, ok: int, failed: int) -> None:
        stats = self._counter.add(samples, hard, ok, failed)
        if hard and self._hook_observed(HARD_EXAMPLE_HOOK):
            self.announce(
                HARD_EXAMPLE_HOOK,
                job_name=self.config.job_name,
                count=hard,
                stats=stats.as_dict(),
            )

    def _hook_observed(self, hook: str) -> bool:
        """Whether any plugin implements ``hook`` (else announcing it, per call, is skipped)."""
        from sedna_core.plugins import get_plugin_manager

        pm = self.plugin_manager if self.plugin_manager is not None else get_plugin_manager()
        caller = getattr(pm.hook, hook, None)
        return caller is None or bool(caller.get_hookimpls())  # plugins may come later: no cache

    def _report_periodically(self) -> None:
        while not self._closed:
            self.clock.sleep(self.config.lc_period)
            if self._closed:
                return
            self.report_stats()


# -- helpers ---------------------------------------------------------------------------------


def _post_processor(post_process: Any) -> Callable[[Any], Any]:
    if post_process is None:
        return lambda result: result
    if not callable(post_process):
        raise ConfigError("post_process", post_process, "a callable taking the edge result")
    return lambda result: post_process(copy.deepcopy(result))  # Sedna deep-copies too


def _probability_like(result: Any, batch: bool) -> bool:
    """Whether ``result`` already is class probabilities: float vectors (one, or one per
    sample) with every entry in [0, 1]. Labels (integers), logits and other shapes are not."""
    try:
        arr = result if isinstance(result, np.ndarray) else np.asarray(result)
    except (TypeError, ValueError, OverflowError):
        return False
    if arr.dtype.kind != "f" or arr.size == 0:
        return False
    want = 2 if batch else 1
    if arr.ndim == want + 1 and arr.shape[-2] == 1:  # (n, 1, K) / (1, K): one vector each
        arr = arr.reshape(*arr.shape[:-2], arr.shape[-1])
    if arr.ndim != want:
        return False
    return bool(arr.min() >= 0 and arr.max() <= 1)  # NaN fails both


def _single(proba: Any) -> Any:
    """A one-request ``predict_proba`` answer as one vector (``(1, K)`` -> ``(K,)``)."""
    arr = np.asarray(proba)
    return arr[0] if arr.ndim == 2 and arr.shape[0] == 1 else proba


def _count_samples(samples: Any) -> int:
    shape = getattr(samples, "shape", None)
    if shape is not None:
        if len(shape) == 0:
            raise JobError("inference_batch takes samples along the first axis, got a scalar")
        return int(shape[0])
    return len(samples)


def _decisions(decided: Any, n: int) -> np.ndarray:
    out = np.asarray(decided, dtype=bool)
    if out.shape != (n,):
        raise JobError(f"the miner returned {out.shape} decisions for {n} samples; fix the miner")
    return out


def _take(samples: Any, idx: np.ndarray) -> Any:
    if isinstance(samples, np.ndarray):
        return samples[idx]
    return [samples[i] for i in idx.tolist()]


def _scatter(rows: list[Any], idx: np.ndarray, container: Any) -> None:
    """``rows[idx[j]] = container[j]`` for every j (``idx`` sorted, without repeats)."""
    if len(idx) == len(rows) == len(container):
        rows[:] = list(container)  # every row, in order: idx is 0..n-1
        return
    for i, row in zip(idx.tolist(), container, strict=False):
        rows[i] = row


def _assemble(n: int, parts: Sequence[tuple[np.ndarray, Any]]) -> Any:
    """Rows from several containers put back in sample order: an array when they all are
    arrays with the same row shape, else a list. Later parts win where indices overlap."""
    for idx, rows in parts:
        if len(rows) != len(idx):
            raise JobError(f"a model returned {len(rows)} results for {len(idx)} samples")
    arrays = [as_numeric_array(rows) for _, rows in parts]
    shapes = {a.shape[1:] for a in arrays if a is not None and a.ndim >= 1}
    if all(a is not None and a.ndim >= 1 for a in arrays) and len(shapes) == 1:
        numeric = [a for a in arrays if a is not None]
        dtype = np.result_type(*numeric)
        if len(parts[-1][0]) == n:  # the last part answers every sample: only its rows remain
            return numeric[-1].astype(dtype)  # a copy: the answer shares no memory
        first = 1 if len(parts[0][0]) == n else 0
        # start from a copy of a part that answers every sample (the edge's, usually)
        out = numeric[0].astype(dtype) if first else np.empty((n, *shapes.pop()), dtype=dtype)
        for (idx, _), a in zip(parts[first:], numeric[first:], strict=True):
            out[idx] = a
        return out
    rows: list[Any] = [None] * n
    for idx, container in parts:
        _scatter(rows, idx, container)
    return rows
