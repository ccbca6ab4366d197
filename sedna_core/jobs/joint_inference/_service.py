"""The cloud side of joint inference: ``BigModelService``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Self

import attrs
import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from sedna_core import wire
from sedna_core.clock import Clock
from sedna_core.config import JobConfig
from sedna_core.config.joint_inference import BigModelServiceConfig
from sedna_core.errors import ConfigError, JobError, WireFormatError
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.joint_inference._batching import Batcher, QueueFullError
from sedna_core.jobs.joint_inference._protocol import (
    JSON_CONTENT_TYPE,
    as_numeric_array,
    check_job_name,
    encode_result,
    error_frame,
    info_path,
    predict_path,
    stream_path,
)
from sedna_core.service import (
    METRICS_KEY,
    ServiceRunner,
    create_app,
    error_body,
    json_error,
    read_body,
    read_json,
    request_id,
)

__all__ = ["BigModelService"]


class BigModelService(JobBase):
    """Serves the big model for :class:`JointInference` edges (Sedna's ``BigModelService``).

    ``POST /{job_name}/predict`` takes Sedna's JSON ``{"data": [...]}`` and answers
    ``{"result": [...]}``, or the same with sedna-core's binary tensor format
    (``Content-Type: application/x-sedna-tensors``). ``GET /{job_name}/predict/ws`` opens a
    predict stream: a websocket carrying the same binary requests and answers without an HTTP
    request each (what :class:`JointInference` uses for binary calls). ``GET /{job_name}``
    lists the routes; ``/healthz`` and ``/metrics`` come from the service base, with its token
    authentication, TLS and request-size limit. Predictions run in worker threads (tiny ones on
    the event loop), so the service answers health checks and other clients while the model
    computes; stopping lets a stream's prediction in progress send its answer first.

    Parameters
    ----------
    estimator
        The big model (instance, class or factory; any backend).
    config
        Job settings (``JOB_NAME``, ``MODEL_URL``...); from the environment by default.
    service_config
        Bind and protection settings (``BIG_MODEL_BIND_IP``/``BIG_MODEL_BIND_PORT``,
        ``SEDNA_TOKEN``, TLS, limits); from the environment by default.
    host, port, token, job_name, workers
        Override the two configurations.
    model_path
        Model file loaded into ``estimator`` on :meth:`start` (else ``MODEL_URL`` when set,
        else the estimator is used as it is).
    input_shape, input_dtype
        What one sample looks like (e.g. ``(64,)``, ``"float32"``; None entries match any
        size). Requests whose data do not fit get a 400 saying what was expected; data are
        cast to ``input_dtype``. Without ``input_shape``, a model with scikit-learn's
        ``n_features_in_`` gets ``(n_features_in_,)``.
    max_batch_size, max_queue_delay, max_queue
        Dynamic batching (``SEDNA_MAX_BATCH_SIZE``, ``SEDNA_MAX_QUEUE_DELAY``,
        ``SEDNA_MAX_QUEUE``): concurrent requests run as one model call of at most
        ``max_batch_size`` samples (1 turns it off); an idle model runs a request at once; a
        request beyond ``max_queue`` waiting ones gets 503 with ``Retry-After``. See
        :mod:`sedna_core.jobs.joint_inference._batching`.
    backend, plugin_manager, clock
        See :class:`~sedna_core.jobs._base.JobBase`.
    """

    job_kind = "jointinferenceservice"

    def __init__(
        self,
        estimator: Any = None,
        *,
        config: JobConfig | None = None,
        service_config: BigModelServiceConfig | None = None,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        job_name: str | None = None,
        workers: int | None = None,
        model_path: str | None = None,
        input_shape: Sequence[int | None] | None = None,
        input_dtype: str | np.dtype[Any] | None = None,
        max_batch_size: int | None = None,
        max_queue_delay: float | None = None,
        max_queue: int | None = None,
        backend: str | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if config is None:
            config = JobConfig.from_env(job_name=job_name)
        elif job_name is not None:
            config = attrs.evolve(config, job_name=job_name)
        check_job_name(config.job_name)
        overrides = {
            "host": host,
            "port": port,
            "token": token,
            "workers": workers,
            "max_batch_size": max_batch_size,
            "max_queue_delay": max_queue_delay,
            "max_queue": max_queue,
        }
        if service_config is None:
            service_config = BigModelServiceConfig.from_env(**overrides)
        else:
            service_config = attrs.evolve(
                service_config, **{k: v for k, v in overrides.items() if v is not None}
            )
        for name, least in (("max_batch_size", 1), ("max_queue", 1), ("max_queue_delay", 0)):
            value = getattr(service_config, name)
            if not value >= least:  # explicit arguments skip the environment's conversion
                raise ConfigError(name, value, f"a number >= {least}")
        super().__init__(
            estimator, config=config, backend=backend, plugin_manager=plugin_manager, clock=clock
        )
        if self.estimator is None:
            raise JobError("BigModelService needs an estimator (the big model) to serve")
        self.service_config = service_config
        self.model_path = model_path
        self.input_shape = None if input_shape is None else tuple(input_shape)
        try:
            self.input_dtype = None if input_dtype is None else np.dtype(input_dtype)
        except TypeError as exc:
            raise ConfigError("input_dtype", input_dtype, "a numpy dtype name") from exc
        self._loaded = False
        self._runner: ServiceRunner | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    # -- Sedna's API -------------------------------------------------------------------------
    def load(self) -> None:
        """Load the model file (``model_path``, else ``MODEL_URL``) once, if there is one."""
        if self._loaded:
            return
        path = self.model_path
        if path is None and self.config.model_url:
            from sedna_core.artifacts import resolve_model_path

            path = resolve_model_path(self.config, self.estimator.default_model_file)
        if path is not None:
            self.estimator.load(path)
        self._loaded = True

    def inference(
        self, data: Any, post_process: Callable[[Any], Any] | None = None, **kwargs: Any
    ) -> Any:
        """The big model's answer for ``data`` (what the service computes per request).

        Parameters
        ----------
        data
            One request's input, as the big model takes it.
        post_process
            Applied to the model's result (None: the result as it is).
        **kwargs
            Passed to the model's ``predict``.
        """
        result = self.estimator.predict(data, **kwargs)
        return post_process(result) if post_process is not None else result

    def start(self, block: bool = True) -> Self:
        """Load the model and serve.

        ``block=True`` (Sedna's behaviour) serves until SIGINT/SIGTERM; ``block=False`` serves
        from a background thread and returns once listening (stop with :meth:`stop`, or use the
        service as a context manager).

        Parameters
        ----------
        block
            Whether to serve in this thread until a signal (True) or in the background (False).

        Returns
        -------
        BigModelService
            This service (once stopped with ``block=True``; listening with ``block=False``).
        """
        with self._lock:
            if self._runner is not None:
                raise JobError("this BigModelService is already started")
            self.load()
            if self.input_shape is None:
                n_features = getattr(self.estimator.model, "n_features_in_", None)
                if isinstance(n_features, int | np.integer):
                    self.input_shape = (int(n_features),)
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=self.service_config.workers, thread_name_prefix="sedna-predict"
            )
            self._runner = ServiceRunner(self.build_app(), self.service_config)
        if block:
            try:
                self._runner.run_forever()
            finally:
                self._release()
            return self
        try:
            self._runner.start_in_background()
        except BaseException:
            self._release()
            raise
        self.log.info("big model service listening", url=self.predict_url)
        return self

    def stop(self) -> None:
        """Stop serving (in-flight requests finish first); safe to call twice."""
        runner = self._runner
        if runner is not None:
            runner.stop_background()
        self._release()

    def _release(self) -> None:
        with self._lock:
            executor, self._executor, self._runner = self._executor, None, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        self.stop()
        super().close()

    @property
    def url(self) -> str:
        """The ``http(s)://host:port`` of the running service (JobError when not started)."""
        if self._runner is None:
            raise JobError("the service is not started")
        return self._runner.url

    @property
    def port(self) -> int:
        """The TCP port the running service listens on (JobError when not started)."""
        if self._runner is None:
            raise JobError("the service is not started")
        return self._runner.port

    @property
    def predict_url(self) -> str:
        """The URL edges post to: :attr:`url` + ``/{JOB_NAME}/predict`` (Sedna's route)."""
        return self.url + predict_path(self.config.job_name)

    # -- the HTTP application ----------------------------------------------------------------
    def build_app(self) -> web.Application:
        """The aiohttp application (service base + Sedna's routes), for embedding or tests."""
        name = self.config.job_name
        app = create_app(name=name, config=self.service_config, clock=self.clock)
        metrics = app[METRICS_KEY]
        samples_total = metrics.counter(
            "sedna_ji_predict_samples_total", "Samples predicted by the big model", ["format"]
        )
        samples_by_format = {
            True: samples_total.series(format="binary"),
            False: samples_total.series(format="json"),
        }
        predict_seconds = metrics.histogram(
            "sedna_ji_predict_seconds", "Time the big model spent per call (a batch is one call)"
        ).series()
        stream_requests = metrics.counter(
            "sedna_ji_stream_requests_total", "Requests answered over predict streams", ["status"]
        )
        by_status: dict[int, Any] = {}

        def count_stream_request(status: int) -> None:
            series = by_status.get(status)
            if series is None:  # a handful of statuses: resolved once each
                series = by_status[status] = stream_requests.series(status=str(status))
            series.inc()

        placement = _Placement(self.service_config.inline_predict_below)

        async def info(request: web.Request) -> web.Response:
            # Sedna's shape: one entry per route, named after its handler
            routes = [
                {"path": r.resource.canonical, "name": getattr(r.handler, "__name__", r.method)}
                for r in request.app.router.routes()
                if r.resource is not None and r.method != "HEAD"
            ]
            return web.json_response({"infos": routes})

        async def run_model(x: Any) -> Any:
            """The model's answer for one request's or one batch's data (or a json_error)."""
            n = _rows(x)
            executor = self._executor
            if executor is None:
                raise json_error(503, "unavailable", "the service is stopping; retry elsewhere")
            try:
                if placement.inline(n):
                    result, seconds = _timed_inference(self.inference, x)
                else:
                    result, seconds = await asyncio.get_running_loop().run_in_executor(
                        executor, _timed_inference, self.inference, x
                    )
            except (ValueError, TypeError) as exc:
                raise json_error(
                    400, "invalid_input", f"the model rejected the data: {exc}"
                ) from None
            placement.record(seconds, n)
            predict_seconds.observe(seconds)
            return result

        cfg = self.service_config
        batcher = Batcher(
            run_model,
            max_batch_size=cfg.max_batch_size,
            max_queue_delay=cfg.max_queue_delay,
            max_queue=cfg.max_queue,
            workers=cfg.workers,
            clock=self.clock,
            metrics=metrics,
            log=self.log,
        )

        async def answer(data: Any, binary: bool) -> tuple[bytes, str]:
            """The answer's body and content type for a request's data (or a json_error)."""
            x = self._validate(data)  # per-request checks, before any batching
            n = _rows(x)
            try:
                result = await batcher.submit(x, n)
            except QueueFullError as exc:
                raise json_error(
                    503, "overloaded", str(exc), headers={"Retry-After": _RETRY_AFTER}
                ) from None
            samples_by_format[binary].inc(float(n))
            try:
                return encode_result(result, binary)
            except (TypeError, ValueError) as exc:
                raise json_error(
                    500, "internal_error", f"the model's result cannot be sent: {exc}"
                ) from None

        async def predict(request: web.Request) -> web.Response:
            # the exact header our clients send is recognised without parsing it
            binary = (
                request.headers.get("Content-Type") == wire.CONTENT_TYPE
                or request.content_type == wire.CONTENT_TYPE
            )
            if binary:
                body = await read_body(request)  # no whole-body copy in the event loop
                if _header_bytes(body) > _INLINE_HEADER_BYTES:  # many tensors: decode off-loop
                    data = await asyncio.get_running_loop().run_in_executor(
                        None, _tensor_data, body
                    )
                else:
                    data = _tensor_data(body)
            elif request.content_type in (JSON_CONTENT_TYPE, "text/plain"):
                # bounded (max_json_size), strict: non-finite numbers and deep nesting are 400s
                data = _json_data(
                    await read_json(request, what="the predict body", arrays=("data",))
                )
            else:
                raise json_error(
                    415,
                    "unsupported_media_type",
                    f'send Content-Type {JSON_CONTENT_TYPE} with {{"data": [...]}}, or '
                    f"{wire.CONTENT_TYPE} with a 'data' tensor; got {request.content_type!r}",
                )
            body, content_type = await answer(data, binary)
            return web.Response(body=body, headers={"Content-Type": content_type})

        # -- predict streams: the binary exchange over a websocket, one answer per message --
        streams: dict[web.WebSocketResponse, bool] = {}  # open stream -> answering now
        stopping = asyncio.Event()

        async def stream_answer(body: bytes, rid: str) -> bytes | str:
            status = 200
            try:
                reply: bytes | str
                payload, content_type = await answer(_tensor_data(body), True)
                reply = payload if content_type == wire.CONTENT_TYPE else payload.decode()
            except web.HTTPException as exc:
                status = exc.status
                reply = error_frame(status, exc.text or "")
            except WireFormatError as exc:
                status = 400
                reply = error_frame(status, error_body("wire_format_error", str(exc)))
            except Exception:
                status = 500
                self.log.exception("unhandled error answering a predict stream")
                reply = error_frame(
                    status,
                    error_body(
                        "internal_error",
                        f"internal server error; quote request id {rid} when reporting it",
                    ),
                )
            count_stream_request(status)
            return reply

        async def predict_stream(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse(
                max_msg_size=self.service_config.max_request_size,
                # a blocking edge reads only during its calls: do not wait for its half of a
                # closing handshake (it sees the close on its next call and opens a new stream)
                timeout=_STREAM_CLOSE_SECONDS,
                compress=False,  # tensors hardly compress; deflate would only cost time
            )
            await ws.prepare(request)
            streams[ws] = False
            try:
                async for msg in ws:
                    if msg.type is WSMsgType.BINARY:
                        streams[ws] = True
                        reply = await stream_answer(msg.data, request_id(request))
                    elif msg.type is WSMsgType.TEXT:
                        count_stream_request(415)
                        reply = error_frame(
                            415,
                            error_body(
                                "unsupported_media_type",
                                "send binary frames holding a tensor message with a 'data' "
                                f"tensor ({wire.CONTENT_TYPE}); JSON goes to POST "
                                f"{predict_path(name)}",
                            ),
                        )
                    else:
                        continue
                    try:
                        if isinstance(reply, bytes):
                            await ws.send_bytes(reply)
                        else:
                            await ws.send_str(reply)
                    except ConnectionError:  # the client left before its answer
                        break
                    streams[ws] = False
                    if stopping.is_set():
                        break
            finally:
                streams.pop(ws, None)
            if not ws.closed:
                if stopping.is_set():
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
                else:
                    await ws.close()
            return ws

        async def close_streams(app: web.Application) -> None:
            # idle streams close now; a stream answering closes once its answer is sent
            stopping.set()
            idle = [ws for ws, busy in streams.items() if not busy]
            await asyncio.gather(
                *(
                    ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")
                    for ws in idle
                ),
                return_exceptions=True,
            )

        app.on_shutdown.append(close_streams)

        async def stop_batcher(app: web.Application) -> None:
            await batcher.aclose()

        app.on_cleanup.append(stop_batcher)
        app.router.add_get(info_path(name), info)
        app.router.add_post(predict_path(name), predict)
        app.router.add_get(stream_path(name), predict_stream)
        return app

    def _expected(self) -> str:
        shape = ", ".join("*" if d is None else str(d) for d in self.input_shape or ())
        dims = f"(n, {shape})" if self.input_shape else "an array"
        dtype = f" of {self.input_dtype} numbers" if self.input_dtype is not None else ""
        return f"{dims}{dtype}"

    def _validate(self, data: Any) -> Any:
        """The request's data as the model takes it, or a 400 that says what was expected."""
        arr = as_numeric_array(data)
        if arr is None:
            if isinstance(data, np.ndarray) or self.input_shape or self.input_dtype is not None:
                got = f"dtype {data.dtype}" if isinstance(data, np.ndarray) else "non-numeric data"
                raise json_error(400, "invalid_input", f"expected {self._expected()}; got {got}")
            return data  # Sedna's contract: the model gets the JSON list as it came
        if self.input_dtype is not None and not np.can_cast(
            arr.dtype, self.input_dtype, "same_kind"
        ):
            raise json_error(
                400, "invalid_input", f"expected {self._expected()}; got dtype {arr.dtype}"
            )
        want = self.input_shape
        if want is not None:
            got = arr.shape[1:]
            fits = got == want or (  # a plain comparison first: the common case
                len(got) == len(want)
                and all(w is None or w == g for w, g in zip(want, got, strict=True))
            )
            if not fits or arr.ndim == 0 or arr.shape[0] == 0:
                raise json_error(
                    400, "invalid_input", f"expected {self._expected()}; got shape {arr.shape}"
                )
        if self.input_dtype is not None and arr.dtype != self.input_dtype:
            arr = arr.astype(self.input_dtype)
        return arr

    # -- context manager: serve in the background ----------------------------------------------
    def __enter__(self) -> Self:
        if self._runner is None:
            self.start(block=False)
        return self


_STREAM_CLOSE_SECONDS = 0.25  # how long closing a predict stream waits for the edge's reply
# Seconds a client refused by a full queue waits: a full queue drains within a few batches.
_RETRY_AFTER = "1"


def _rows(x: Any) -> int:
    """Samples in a request's data (its first axis; 1 for a scalar)."""
    return len(x) if hasattr(x, "__len__") and getattr(x, "ndim", 1) else 1


def _timed_inference(infer: Callable[[Any], Any], x: Any) -> tuple[Any, float]:
    # perf_counter, not the injected clock: this measures work, it schedules nothing
    started = time.perf_counter()
    result = infer(x)
    return result, time.perf_counter() - started


class _Placement:
    """Where a prediction runs: in a worker thread, or on the event loop when it is tiny.

    Handing a prediction to a thread and back costs about 0.1 ms; for a model that answers in
    less, that hop is most of the request. After a warm-up in threads, a request whose
    expected time is under ``inline_below`` runs on the loop, which then pauses for at most
    about that long. 0 keeps every prediction in threads.

    The expected time is the recent seconds per sample of requests of about the same size
    (sizes grouped by powers of two: a model's fixed cost per call makes one sample cost more
    than one sample of a batch) times the request's samples; a size not seen yet borrows the
    estimate of the nearest smaller size, which over-estimates, so it errs towards threads.
    """

    WARMUP = 8
    #: weight of the newest measurement in the moving average
    ALPHA = 0.2

    def __init__(self, inline_below: float) -> None:
        self.inline_below = inline_below
        #: size class (bit length of the sample count) -> [seconds per sample, measurements]
        self._classes: dict[int, list[float]] = {}

    def expected(self, samples: int) -> float | None:
        """Expected seconds for ``samples`` samples, or None before the warm-up."""
        n = max(samples, 1)
        for size_class in range(n.bit_length(), 0, -1):
            known = self._classes.get(size_class)
            if known is not None and known[1] >= self.WARMUP:
                return known[0] * n
        return None

    def inline(self, samples: int) -> bool:
        if self.inline_below <= 0:
            return False
        expected = self.expected(samples)
        return expected is not None and expected < self.inline_below

    def record(self, seconds: float, samples: int) -> None:
        n = max(samples, 1)
        per = seconds / n
        known = self._classes.get(n.bit_length())
        if known is None:
            self._classes[n.bit_length()] = [per, 1.0]
        else:
            known[0] = (1 - self.ALPHA) * known[0] + self.ALPHA * per
            known[1] += 1


# A tensor message whose JSON header is larger than this is decoded in a worker thread (its
# per-tensor work then yields the GIL); one predict tensor's header is a few hundred bytes.
_INLINE_HEADER_BYTES = 4096


def _header_bytes(body: bytes | bytearray | memoryview) -> int:
    """The header length a tensor message announces (bytes 8-11), 0 when too short."""
    return int.from_bytes(body[8:12], "little") if len(body) >= 12 else 0


def _tensor_data(body: bytes | bytearray | memoryview) -> np.ndarray:
    tensors = wire.decode(body)  # WireFormatError -> 400 (service base)
    if isinstance(tensors, dict):
        if "data" in tensors:
            return tensors["data"]
    elif len(tensors) == 1:
        return tensors[0]
    raise json_error(400, "invalid_input", "the tensor message must hold one tensor named 'data'")


def _json_data(doc: Any) -> Any:
    if not isinstance(doc, dict) or "data" not in doc:
        raise json_error(
            400, "invalid_input", 'expected a JSON object {"data": [...]} (Sedna\'s body)'
        )
    if not isinstance(doc["data"], list | np.ndarray):  # numbers arrive as an array
        raise json_error(
            400, "invalid_input", f"'data' must be a list, got {type(doc['data']).__name__}"
        )
    return doc["data"]
