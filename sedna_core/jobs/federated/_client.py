"""The federated-learning client job: train locally, send weights, receive the global model."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import aiohttp
import numpy as np

from sedna_core.clock import Clock
from sedna_core.config.federated import DEFAULT_CHUNK_BYTES, FederatedConfig
from sedna_core.errors import (
    AuthenticationError,
    BackendError,
    JobError,
    ProtocolError,
    ServiceError,
    ServiceUnavailableError,
    WireFormatError,
)
from sedna_core.jobs._base import JobBase
from sedna_core.jobs.federated._protocol import (
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    WS_PATH,
    control,
    numeric_metrics,
    parse_control,
    parse_specs,
)
from sedna_core.jobs.federated._secagg import client_reveal, client_setup
from sedna_core.jobs.federated._transforms import TransformChain
from sedna_core.wire import Assembler, encode_chunks

__all__ = ["FederatedLearning"]

_MAX_BACKOFF = 30.0

#: what the client says when the server refuses its token (HTTP 401 or websocket close 4401)
UNAUTHORIZED_HINT = "401/4401 from the server: check SEDNA_TOKEN"


class _ConnectionLost(Exception):
    """The connection to the server ended; the client reconnects."""


class FederatedLearning(JobBase):
    """A federated-learning client (Sedna's ``FederatedLearning``).

    ``train`` trains the estimator on local data, sends its weights to the aggregation server,
    receives the new global weights, and repeats until the server says the job is done; then it
    returns the estimator (or ``post_process(estimator)``). Connection losses are survived:
    the client reconnects with back-off and retrains from the global model it receives.

    Parameters
    ----------
    estimator
        The local model: anything a backend wraps (see :func:`sedna_core.backends.set_backend`).
    aggregation
        The aggregation the job runs (informative: the server decides; a mismatch is logged).
    address
        ``ws(s)://host:port`` of the server; else ``AGG_PROTOCOL``/``AGG_IP``/``AGG_PORT``.
    client_id
        This client's id; else ``WORKER_NAME`` (Sedna's controller sets it), else a unique
        ``<host>-<pid>-<random>`` so that clients started by hand never replace each other.
    token
        The job's token or this client's own; else ``SEDNA_TOKEN``.
    ca_file
        PEM bundle to trust for ``wss://``; else ``SEDNA_TLS_CA``.
    classes
        Every label of the job, for classifiers whose layout follows the labels they see
        (scikit-learn). Optional: by default each client announces its own labels when it joins
        and the server fixes their union before round 1; declare them (on every client) when
        clients may join later with labels the first ones lack, when there are more than 1000,
        or when the label set should not be announced.
    receive_timeout, reconnect_attempts
        Longest silence from the server (seconds) before the connection counts as lost, and how
        many reconnections in a row are tried before :class:`ServiceUnavailableError`.
    backend, config, plugin_manager, clock
        As for every job (:class:`~sedna_core.jobs._base.JobBase`).
    """

    job_kind: ClassVar[str] = "federatedlearningjob"

    def __init__(
        self,
        estimator: Any = None,
        aggregation: str | None = "FedAvg",
        *,
        address: str | None = None,
        client_id: str | None = None,
        token: str | None = None,
        ca_file: str | None = None,
        classes: Sequence[Any] | None = None,
        receive_timeout: float | None = None,
        reconnect_attempts: int | None = None,
        backend: str | None = None,
        config: FederatedConfig | None = None,
        plugin_manager: Any = None,
        clock: Clock | None = None,
    ) -> None:
        if config is None:
            config = FederatedConfig.from_env(
                worker_name=client_id,
                token=token,
                tls_ca=ca_file,
                receive_timeout=receive_timeout,
                reconnect_attempts=reconnect_attempts,
            )
        super().__init__(
            estimator, config=config, backend=backend, plugin_manager=plugin_manager, clock=clock
        )
        self.config: FederatedConfig = config
        self.aggregation = aggregation
        self.address = (address or config.address).rstrip("/")
        self.client_id = client_id or config.worker_name or unique_client_id()
        self.classes = list(classes) if classes is not None else None
        self._job_classes: list[Any] | None = None
        self.log = self.log.bind(peer=self.client_id)
        self.round = 0
        self.history: list[dict[str, Any]] = []
        self._chunk_bytes = DEFAULT_CHUNK_BYTES
        #: the job's update transforms, as the server announced them (see _transforms.py)
        self._transforms = TransformChain()
        #: control frames a secure-aggregation stage read ahead, for the main loop
        self._held: list[dict[str, Any]] = []
        #: (round, attempt) -> this client's secure-aggregation secrets, until it unmasks
        self._secure_rounds: dict[tuple[Any, Any], Any] = {}

    # -- public API ----------------------------------------------------------------------
    def train(
        self,
        train_data: Any,
        valid_data: Any = None,
        post_process: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Take part in the job until it ends; returns the estimator (or ``post_process`` of it).

        ``kwargs`` go to the estimator's ``train`` every round (with the server's settings,
        e.g. FedProx's ``proximal_mu``, unless given here).

        Parameters
        ----------
        train_data
            This client's training data, passed to the estimator's ``train`` every round.
        valid_data
            Passed to the estimator's ``train`` as its validation data, and evaluated when the
            server asks for federated evaluation (None: ``train_data`` is evaluated).
        post_process
            Applied to the estimator when the job ends (None: the estimator is returned).
        **kwargs
            Passed to the estimator's ``train`` every round.

        Returns
        -------
        Any
            The trained estimator (with the final global weights), or ``post_process`` of it.

        Raises
        ------
        JobError
            The server ended the job as failed.
        AuthenticationError
            The server refused this client's token.
        ServiceUnavailableError
            The server stayed unreachable for ``reconnect_attempts`` attempts in a row.
        """
        coro = self.atrain(train_data, valid_data, post_process, **kwargs)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # called from inside an event loop (a notebook): run in a private loop and thread
        box: dict[str, Any] = {}

        def main() -> None:
            try:
                box["value"] = asyncio.run(coro)
            except BaseException as exc:
                box["error"] = exc

        thread = threading.Thread(target=main, name="sedna-fl-client", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box["value"]

    async def atrain(
        self,
        train_data: Any,
        valid_data: Any = None,
        post_process: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """The asyncio twin of :meth:`train`.

        Parameters
        ----------
        train_data, valid_data, post_process, **kwargs
            As :meth:`train` takes them.

        Returns
        -------
        Any
            The trained estimator, or ``post_process`` of it.
        """
        failures = 0
        # refuse a model that cannot learn across rounds before the job counts on this client
        await asyncio.to_thread(self.estimator.prepare_federated, train_data, self.classes)
        labels = None  # declared classes need no announcing (and may be too many to announce)
        if self.classes is None:
            labels = await asyncio.to_thread(self.estimator.federated_labels, train_data)
        self.announce(
            "sedna_job_started",
            job_kind="federatedlearning",
            job_name=self.config.job_name,
            info={"client": self.client_id},
        )
        from sedna_core.service import HttpClient

        while True:
            http = HttpClient(
                _http_url(self.address),
                ca_file=self.config.tls_ca,
                connect_timeout=self.config.connect_timeout,
                read_timeout=self.config.receive_timeout,
                retries=0,
                clock=self.clock,
            )
            try:
                ws = await http.ws_connect(
                    WS_PATH, heartbeat=self.config.heartbeat, max_msg_size=64 << 20
                )
                try:
                    done = await self._session(ws, train_data, valid_data, labels, kwargs)
                    if done:
                        break
                finally:
                    await ws.close()
                failures = 0
            except AuthenticationError as exc:
                self.log.warning(UNAUTHORIZED_HINT, server=self.address, detail=str(exc))
                self.report("train", "failed")
                raise AuthenticationError(401, "unauthorized", UNAUTHORIZED_HINT) from exc
            except (ServiceUnavailableError, _ConnectionLost, aiohttp.ClientError, OSError) as exc:
                failures += 1
                if failures > self.config.reconnect_attempts:
                    self.report("train", "failed")
                    raise ServiceUnavailableError(
                        f"lost the aggregation server at {self.address} and could not reconnect "
                        f"in {self.config.reconnect_attempts} attempt(s): {exc}"
                    ) from exc
                delay = min(_MAX_BACKOFF, self.config.reconnect_backoff * 2 ** (failures - 1))
                self.log.info("reconnecting", attempt=failures, delay=delay, reason=str(exc))
                await self.clock.asleep(delay)
            finally:
                await http.close()
        self.announce(
            "sedna_job_finished",
            job_kind="federatedlearning",
            job_name=self.config.job_name,
            status="completed",
            info={"rounds": self.round},
        )
        return post_process(self.estimator) if post_process is not None else self.estimator

    # -- one connection ------------------------------------------------------------------
    async def _session(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        train_data: Any,
        valid_data: Any,
        labels: list[Any] | None,
        train_kwargs: Mapping[str, Any],
    ) -> bool:
        """Serve one connection; True when the job ended (stop received)."""
        inbox: asyncio.Queue[aiohttp.WSMessage] = asyncio.Queue()
        pump = asyncio.ensure_future(_pump(ws, inbox))
        try:
            await ws.send_str(
                control(
                    "join",
                    client_id=self.client_id,
                    token=self.config.token,
                    aggregation=self.aggregation,
                    num_samples=_num_samples(train_data),
                    **({"labels": labels} if labels is not None else {}),
                )
            )
            welcome = await self._control(inbox)
            if welcome["type"] != "welcome":
                self._raise_for(welcome)
            self._chunk_bytes = int(welcome.get("chunk_bytes") or DEFAULT_CHUNK_BYTES)
            self._transforms = TransformChain.from_welcome(
                welcome.get("transforms"), plugin_manager=self.plugin_manager
            )
            await self._apply_classes(welcome.get("classes"), train_data)
            server_agg = welcome.get("aggregation")
            asked = str(self.aggregation or "").rpartition(":")[2].strip()  # "dist:Name"
            if asked and server_agg and str(server_agg).casefold() != asked.casefold():
                # The server decides. A client that named another aggregation has a typo or a
                # misconfigured job, which a user must see; one left at Sedna's default
                # ("FedAvg", what every client says unless told otherwise) is only informed.
                report = self.log.info if self.aggregation == "FedAvg" else self.log.warning
                report(
                    f"this client asked for aggregation {self.aggregation!r}, but the server "
                    f"runs {server_agg!r}; the server's is used",
                    client_aggregation=self.aggregation,
                    server_aggregation=server_agg,
                )
            self.log.info("joined", server=self.address, completed=welcome.get("completed_rounds"))
            while True:
                msg = await self._control(inbox)
                kind = msg["type"]
                if kind == "round":
                    await self._on_round(ws, inbox, msg, train_data, valid_data, train_kwargs)
                elif kind == "stop":
                    await self._on_stop(inbox, msg)
                    return True
                elif kind == "result":
                    self._on_result(msg)
                elif kind == "secagg_unmask":
                    await client_reveal(self, ws, msg)
                elif kind in ("accepted", "late", "rejected"):
                    level = {"accepted": "debug", "late": "info"}.get(kind, "warning")
                    getattr(self.log, level)(
                        f"update {kind}",
                        round=msg.get("round"),
                        reason=msg.get("reason"),
                        message=msg.get("message"),
                    )
                elif kind == "error":
                    self._raise_for(msg)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    async def _on_round(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        inbox: asyncio.Queue[aiohttp.WSMessage],
        msg: dict[str, Any],
        train_data: Any,
        valid_data: Any,
        train_kwargs: Mapping[str, Any],
    ) -> None:
        task = msg.get("task")
        number = int(msg.get("round", 0))
        weights = await self._weights(inbox, msg) if msg.get("weights") else None
        await self._apply_classes(msg.get("classes"), train_data)
        # the global model, kept apart from the estimator, for the transforms' delta
        base = None
        if self._transforms and weights is not None and task == "train":
            base = [np.array(w, copy=True) for w in weights]
        if weights is not None:
            await asyncio.to_thread(self.estimator.set_weights, weights)
        if task == "sync":
            return
        self.round = number
        try:
            if task == "init":
                local = await asyncio.to_thread(self.estimator.get_weights)
                await self._send_update(ws, msg, local, _num_samples(train_data), {})
            elif task == "train":
                secure = self._transforms.secure
                secret = None
                if secure is not None and base is not None:
                    # keys and shares first: a client that cannot take part does not train
                    secret = await client_setup(self, ws, inbox, msg, secure)
                    if secret is None:
                        return
                kwargs = {**(msg.get("config") or {}), **train_kwargs}
                result = await asyncio.to_thread(
                    self.estimator.train, train_data, valid_data, **kwargs
                )
                local = await asyncio.to_thread(self.estimator.get_weights)
                metrics = numeric_metrics(result)
                if base is not None:
                    local, extra = await asyncio.to_thread(
                        self._transforms.encode_update,
                        local,
                        base,
                        number,
                        msg.get("transforms"),
                        secret,
                        _num_samples(train_data),
                    )
                    metrics.update(extra)
                if secret is not None:
                    self._secure_rounds = {(number, msg.get("attempt", 0)): secret}
                await self._send_update(ws, msg, local, _num_samples(train_data), metrics)
            elif task == "evaluate":
                data = valid_data if valid_data is not None else train_data
                scores = await asyncio.to_thread(self.estimator.evaluate, data)
                await ws.send_str(
                    control(
                        "evaluation",
                        round=number,
                        num_samples=_num_samples(data),
                        metrics=numeric_metrics(scores),
                    )
                )
        except (ConnectionError, aiohttp.ClientError, RuntimeError) as exc:
            if ws.closed:
                raise _ConnectionLost(f"connection closed while sending: {exc}") from exc
            raise
        except (ServiceError, JobError):
            raise
        except Exception as exc:  # the user's training failed: tell the server, then fail too
            with contextlib.suppress(Exception):
                await ws.send_str(control("failed", round=number, message=repr(exc)[:500]))
            raise

    async def _apply_classes(self, classes: Any, train_data: Any) -> None:
        """Lay the model out for the job's classes (fixed by the server) when they change."""
        if not isinstance(classes, list) or classes == self._job_classes:
            return
        try:
            await asyncio.to_thread(self.estimator.prepare_federated, train_data, classes)
        except BackendError as exc:
            raise JobError(f"this client cannot follow the job's classes: {exc}") from exc
        self._job_classes = classes

    async def _send_update(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        msg: dict[str, Any],
        weights: list[np.ndarray],
        num_samples: int,
        metrics: dict[str, float],
    ) -> None:
        arrays = [np.asarray(w) for w in weights]
        await ws.send_str(
            control(
                "update",
                round=msg.get("round"),
                attempt=msg.get("attempt", 0),
                num_samples=num_samples,
                metrics=metrics,
                tensors=[
                    {"name": None, "dtype": _le(a.dtype), "shape": list(a.shape)} for a in arrays
                ],
            )
        )
        for frame in encode_chunks(arrays, chunk_bytes=self._chunk_bytes):
            await ws.send_bytes(frame)

    async def _on_stop(self, inbox: asyncio.Queue[aiohttp.WSMessage], msg: dict[str, Any]) -> None:
        weights = await self._weights(inbox, msg) if msg.get("weights") else None
        status = msg.get("status")
        if status != "completed":
            self.report("train", "failed")
            raise JobError(f"the aggregation server ended the job: {msg.get('message')}")
        if weights is not None:
            await asyncio.to_thread(self.estimator.set_weights, weights)
        self.round = int(msg.get("round") or self.round)
        self._save()
        self.report("train", "completed", owner_info=self._owner_info())
        self.log.info("job completed", rounds=self.round)

    def _on_result(self, msg: dict[str, Any]) -> None:
        record = {k: msg.get(k) for k in ("round", "clients", "num_samples", "metrics")}
        self.history.append(record)
        self.log.info(
            "round done",
            **{k: v for k, v in record.items() if k != "metrics"},
            metrics=record["metrics"],
        )
        self._save()
        self.report("train", "running", owner_info=self._owner_info(record.get("num_samples")))

    # -- helpers ---------------------------------------------------------------------------
    async def _next(self, inbox: asyncio.Queue[aiohttp.WSMessage]) -> aiohttp.WSMessage:
        getter = asyncio.ensure_future(inbox.get())
        timer = asyncio.ensure_future(self.clock.asleep(self.config.receive_timeout))
        try:
            await asyncio.wait({getter, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not getter.done():
                getter.cancel()
        if not getter.done() or getter.cancelled():
            raise _ConnectionLost(
                f"no message from the server for {self.config.receive_timeout:g} s"
            )
        msg = getter.result()
        if msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.ERROR,
        ):
            if msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_UNAUTHORIZED:
                raise AuthenticationError(401, "unauthorized", UNAUTHORIZED_HINT)
            if msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_REPLACED:
                self.log.warning(
                    f"another connection with client id {self.client_id!r} replaced this one "
                    "(close 4409): give every client its own id (WORKER_NAME or client_id=...); "
                    "reconnecting"
                )
            raise _ConnectionLost(f"the server closed the connection ({msg.data!r})")
        return msg

    async def _control(self, inbox: asyncio.Queue[aiohttp.WSMessage]) -> dict[str, Any]:
        if self._held:
            return self._held.pop(0)
        while True:
            msg = await self._next(inbox)
            if msg.type == aiohttp.WSMsgType.TEXT:
                try:
                    return parse_control(msg.data)
                except ProtocolError as exc:
                    raise JobError(f"the server speaks another protocol: {exc}") from None
            # stray binary frames (weights of a message we gave up on) are skipped

    async def _weights(
        self, inbox: asyncio.Queue[aiohttp.WSMessage], msg: dict[str, Any]
    ) -> list[np.ndarray]:
        specs = parse_specs(msg.get("tensors"), max_bytes=1 << 62)
        assembler = Assembler(max_bytes=sum(s.nbytes for s in specs) + 1)
        while not assembler.done:
            frame = await self._next(inbox)
            if frame.type != aiohttp.WSMsgType.BINARY:
                raise JobError("the server interrupted the weights it was sending")
            try:
                assembler.feed(frame.data)
            except WireFormatError as exc:
                raise JobError(f"the server sent malformed weights: {exc}") from exc
        result = assembler.result()
        weights = list(result.values()) if isinstance(result, dict) else result
        if [(w.dtype, w.shape) for w in weights] != [(s.dtype, s.shape) for s in specs]:
            raise JobError("the server's weights do not match what it announced")
        return weights

    def _raise_for(self, msg: dict[str, Any]) -> None:
        code, text = msg.get("code"), msg.get("message") or msg.get("type")
        if code == "unauthorized":
            raise AuthenticationError(401, "unauthorized", f"{UNAUTHORIZED_HINT} ({text})")
        if code == "client_id_in_use":
            # our own earlier connection may still look alive to the server (until its
            # heartbeat fails): retry with back-off; another process with our id never frees it
            self.log.warning(
                f"the server refused client id {self.client_id!r}: it is already connected. "
                "If another process uses this id, give every client its own id (WORKER_NAME "
                "or client_id=...); retrying",
                reason=text,
            )
            raise _ConnectionLost(f"client id {self.client_id!r} in use: {text}")
        self.log.warning(
            "the aggregation server refused this client; fix what it says and start it again",
            code=code,
            reason=text,
        )
        raise JobError(f"the aggregation server refused this client: {text}")

    def _save(self) -> None:
        """Save the model to ``MODEL_URL`` (``/MODEL_NAME``); a name without an extension gets
        the backend's (Keras 3 refuses ``model`` but saves ``model.keras``). A failed save is a
        failed step: reported to the local controller as such and raised."""
        if not self.config.model_url:
            return
        from sedna_core.artifacts import is_remote, resolve_model_path

        path = resolve_model_path(self.config, "model")
        suffix = getattr(self.estimator, "model_suffix", "")
        if suffix and not is_remote(path) and not os.path.splitext(path)[1]:
            path += suffix
        try:
            written = self.estimator.save(path)
        except Exception as exc:
            self.report("train", "failed", owner_info=self._owner_info())
            raise JobError(
                f"could not save the model to {path}: {type(exc).__name__}: {exc}"
            ) from exc
        self.log.info("model saved", path=str(written or path), round=self.round)

    def _owner_info(self, samples: Any = None) -> dict[str, Any]:
        now = self.clock.time()
        return {
            "currentRound": self.round,
            "sampleCount": samples,
            "startTime": now,
            "updateTime": now,
        }


async def _pump(
    ws: aiohttp.ClientWebSocketResponse, inbox: asyncio.Queue[aiohttp.WSMessage]
) -> None:
    """Move every websocket message into ``inbox`` (reads are never cancelled mid-frame)."""
    while True:
        msg = await ws.receive()
        await inbox.put(msg)
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            return


def unique_client_id() -> str:
    """``<host>-<pid>-<6 hex>``: unique per process, readable in the server's logs."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()).strip("-")[:64] or "client"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def _http_url(address: str) -> str:
    if address.startswith(("ws://", "wss://")):
        return "http" + address.removeprefix("ws")
    if "://" not in address:
        return f"http://{address}"
    return address


def _le(dtype: np.dtype[Any]) -> str:
    return dtype.newbyteorder("<").str if dtype.byteorder not in ("|", "<") else dtype.str


def _num_samples(data: Any) -> int:
    """Sedna's ``len(train_data)``; an ``(x, y)`` pair counts its rows."""
    if isinstance(data, tuple) and len(data) == 2:
        return max(1, len(data[0]))
    try:
        return max(1, len(data))
    except TypeError:
        return 1
