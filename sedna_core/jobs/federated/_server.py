"""The aggregation server: rounds, deadlines, quorum, retries, checkpoints, and its websocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from aiohttp import WSMsgType, web

from sedna_core.algorithms.aggregation import (
    BaseAggregation,
    TensorSpec,
    check_num_samples,
    specs_of,
)
from sedna_core.clock import Clock, SystemClock
from sedna_core.config.federated import AggregationServerConfig, _check_tokens
from sedna_core.errors import ConfigError, InvalidUpdateError, JobError, ProtocolError
from sedna_core.jobs.federated import _sedna_compat as sedna
from sedna_core.jobs.federated._checkpoint import CheckpointStore
from sedna_core.jobs.federated._protocol import (
    CLOSE_FAILED,
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    PROTOCOL_VERSION,
    WS_PATH,
    check_specs,
    clean_metrics,
    field,
    parse_control,
    parse_specs,
    specs_json,
)
from sedna_core.jobs.federated._rounds import (
    FederatedResult,
    Round,
    describe,
    select_clients,
    weighted_metrics,
)
from sedna_core.jobs.federated._session import Session
from sedna_core.jobs.federated._spool import SpoolDir, SpoolUpdate, UpdateReceiver
from sedna_core.log import configure_logging, get_logger
from sedna_core.service import (
    METRICS_KEY,
    ServiceRunner,
    check_bearer,
    create_app,
    prepare_websocket,
    public,
)

__all__ = ["AggregationServer"]

log = get_logger(__name__)

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
#: control-frame slack above the weight chunk size for one websocket message
_FRAME_SLACK = 1 << 20


class AggregationServer:
    """The federated-learning aggregation server (Sedna's ``AggregationServer``, rebuilt).

    Clients (:class:`~sedna_core.jobs.federated.FederatedLearning`, or Sedna's own clients
    speaking its JSON protocol) connect over a websocket; each round the server sends the
    global weights to the clients it asks, receives their updates in bounded binary chunks,
    checks every chunk against the global model, and aggregates when every asked client
    answered, or at the deadline if a quorum of valid updates arrived. A round that misses its
    quorum is retried; after ``max_retries`` the job fails with a clear error.

    Every argument left as None comes from the environment (``AGG_BIND_IP``, ``AGG_BIND_PORT``,
    ``EXIT_ROUND``, ``PARTICIPANTS_COUNT``, ``AGG_*``; see
    :class:`~sedna_core.config.federated.AggregationServerConfig`), then the defaults.

    Parameters
    ----------
    aggregation
        ``"FedAvg"``, ``{"method": "FedAdam", "param": {"eta": 0.01}}``, or an aggregation
        instance or class.
    exit_round
        Training rounds in the job (at least 1).
    participants_count
        Clients to wait for before the first round (at most the round deadline), also after a
        restart; later rounds start with the connected clients when they make a quorum.
    quorum
        Valid updates a round needs (default ``participants_count``).
    round_deadline
        Seconds a round may take, waiting for clients included.
    fraction
        Share of the connected clients asked to train each round (seeded selection).
    evaluate_every, evaluate_fraction
        Federated evaluation after every N rounds, by that share of the clients.
    seed
        Seed of the client selection.
    max_retries
        Extra attempts of a round that missed its quorum before the job fails.
    host, port, http_port
        Bind address (``http_port`` is Sedna's name for ``port``); 127.0.0.1 by default.
    token, client_tokens
        A job token every client presents, or a table of per-client tokens.
    tls_cert, tls_key
        PEM files: serve ``wss://``.
    checkpoint_dir
        Artifact store for a checkpoint after every round; a restarted server resumes from it.
    initial_weights
        The starting global model (a list of arrays, or a dict name -> array). Without it the
        server asks one client for its initial weights (as Flower does).
    config
        A full configuration (the arguments above override its fields).
    clock
        Time source of deadlines (tests pass a ``ManualClock``).
    on_round
        Called with each round's record when it closes (the CLI prints progress with it).
    """

    def __init__(
        self,
        aggregation: Any = None,
        *,
        exit_round: int | None = None,
        participants_count: int | None = None,
        quorum: int | None = None,
        round_deadline: float | None = None,
        fraction: float | None = None,
        evaluate_every: int | None = None,
        evaluate_fraction: float | None = None,
        seed: int | None = None,
        max_retries: int | None = None,
        host: str | None = None,
        port: int | None = None,
        http_port: int | None = None,
        token: str | None = None,
        client_tokens: Mapping[str, str] | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        checkpoint_dir: str | None = None,
        spool_dir: str | None = None,
        chunk_bytes: int | None = None,
        initial_weights: Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
        sedna_compat: bool | None = None,
        job_name: str | None = None,
        config: AggregationServerConfig | None = None,
        clock: Clock | None = None,
        plugin_manager: Any = None,
        on_round: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        configure_logging()
        explicit = {
            "aggregation": aggregation,
            "exit_round": exit_round,
            "participants_count": participants_count,
            "quorum": quorum,
            "round_deadline": round_deadline,
            "fraction": fraction,
            "evaluate_every": evaluate_every,
            "evaluate_fraction": evaluate_fraction,
            "seed": seed,
            "max_retries": max_retries,
            "host": host,
            "port": port if port is not None else http_port,
            "token": token,
            "client_tokens": dict(client_tokens) if client_tokens is not None else None,
            "tls_cert": tls_cert,
            "tls_key": tls_key,
            "checkpoint_dir": checkpoint_dir,
            "spool_dir": spool_dir,
            "chunk_bytes": chunk_bytes,
            "sedna_compat": sedna_compat,
            "job_name": job_name,
        }
        given = {k: v for k, v in explicit.items() if v is not None}
        cfg = attrs.evolve(config, **given) if config else AggregationServerConfig.from_env(**given)
        cfg = attrs.evolve(cfg, exit_round=max(1, cfg.exit_round))
        self._check_config(cfg)
        self.config = cfg
        self.clock: Clock = clock or SystemClock()
        self.plugin_manager = plugin_manager
        self.on_round = on_round
        from sedna_core.plugins import create_algorithm

        algo = create_algorithm("aggregation", cfg.algorithm_spec(), plugin_manager=plugin_manager)
        assert isinstance(algo, BaseAggregation)
        self.aggregator: BaseAggregation = algo
        self.log = log.bind(job=cfg.job_name, aggregation=algo.name)
        self._job_token = cfg.token
        self._client_tokens = cfg.client_tokens
        self._global: list[np.ndarray] | None = None
        self._specs: list[TensorSpec] | None = None
        if initial_weights is not None:
            self._set_global(*_as_weight_list(initial_weights))
        self._ckpt = (
            CheckpointStore(cfg.checkpoint_dir, cfg.job_name) if cfg.checkpoint_dir else None
        )
        self._sessions: dict[str, Session] = {}
        self._round: Round | None = None
        self._completed = 0
        self._rounds_run = 0
        self.history: list[dict[str, Any]] = []
        self.stats: Tally[str] = Tally()
        self._result: FederatedResult | None = None
        self._runner: ServiceRunner | None = None
        self._spool: SpoolDir | None = None
        self._job_task: asyncio.Task[None] | None = None
        self._ckpt_task: asyncio.Future[Any] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._changed: asyncio.Event | None = None
        self._observers: asyncio.Event | None = None
        self._done: asyncio.Event | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        #: what the job does now: starting, waiting, init, train, evaluate, aggregate, done
        self.phase = "starting"
        #: True while the job waits on the clock or on clients (tests advance a ManualClock then)
        self.idle = False
        self.app = self._build_app()

    # -- public API ----------------------------------------------------------------------
    async def astart(self) -> None:
        """Bind, start serving and start the job (returns once listening)."""
        if self._runner is not None:
            raise RuntimeError("this AggregationServer is already started")
        self._changed, self._observers, self._done = (
            asyncio.Event(),
            asyncio.Event(),
            asyncio.Event(),
        )
        self._spool = SpoolDir(self.config.spool_dir)
        runner = ServiceRunner(self.app, self._service_config())
        await runner.start()
        self._runner = runner
        self.log.info(
            "aggregation server started",
            url=self.ws_url,
            exit_round=self.config.exit_round,
            participants=self.config.participants_count,
            quorum=self.config.effective_quorum,
            deadline=self.config.round_deadline,
        )
        self._job_task = asyncio.ensure_future(self._job())

    async def wait(self) -> FederatedResult:
        """Wait for the job to end; returns its result (``status`` may be ``"failed"``)."""
        assert self._done is not None, "start the server first"
        await self._done.wait()
        assert self._result is not None
        return self._result

    async def astop(self) -> None:
        """Stop now: cancel the job, close every connection, stop listening."""
        if self._job_task is not None and not self._job_task.done():
            self._job_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._job_task
        if self._ckpt_task is not None:
            with contextlib.suppress(Exception):
                await self._ckpt_task
        for task in list(self._tasks):
            task.cancel()
        for session in list(self._sessions.values()):
            await session.close(1001, "server shutting down")
        self._sessions.clear()
        if self._round is not None:
            self._round.discard_updates()
        if self._runner is not None:
            await self._runner.stop()
            self._runner = None
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    async def run(self) -> FederatedResult:
        """Serve until the job ends and reconnecting clients had ``linger`` seconds to learn it."""
        await self.astart()
        try:
            result = await self.wait()
            await self.linger()
            return result
        finally:
            await self.astop()

    async def linger(self) -> None:
        """After the job: wait until every client left, at most ``linger`` seconds."""
        deadline = self.clock.monotonic() + self.config.linger
        await self._wait_for(lambda: not self._sessions, deadline)

    def start(self) -> FederatedResult:
        """Serve the whole job and return its result (blocking, as Sedna's ``start()``)."""
        return asyncio.run(self.run())

    def start_in_background(self) -> None:
        """Serve from a daemon thread (for synchronous programs); returns once listening."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def main() -> None:
            asyncio.set_event_loop(loop)

            async def boot() -> None:
                try:
                    await self.astart()
                except BaseException as exc:
                    errors.append(exc)
                finally:
                    ready.set()

            boot_task = loop.create_task(boot())
            loop.run_forever()
            del boot_task
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=main, name="sedna-aggregation", daemon=True)
        self._thread_loop = loop
        self._thread.start()
        ready.wait()
        if errors:
            self.stop_background()
            raise errors[0]

    def wait_background(self, timeout: float | None = None) -> FederatedResult:
        """Block until the background server's job ends."""
        assert self._thread_loop is not None, "call start_in_background first"
        fut = asyncio.run_coroutine_threadsafe(self.wait(), self._thread_loop)
        return fut.result(timeout)

    def stop_background(self) -> None:
        loop, thread = self._thread_loop, self._thread
        if loop is None or thread is None:
            return
        self._thread_loop = self._thread = None
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self.astop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    @property
    def port(self) -> int:
        assert self._runner is not None, "the server is not started"
        return self._runner.port

    @property
    def url(self) -> str:
        assert self._runner is not None, "the server is not started"
        return self._runner.url

    @property
    def ws_url(self) -> str:
        """``ws(s)://host:port`` (clients' ``address``)."""
        assert self._runner is not None, "the server is not started"
        return self._runner.ws_url

    @property
    def global_weights(self) -> list[np.ndarray] | None:
        return self._global

    @property
    def clients(self) -> list[str]:
        """Ids of the connected clients."""
        return sorted(self._sessions)

    @property
    def current_round(self) -> Round | None:
        """The open round (attempt), if any."""
        return self._round

    def status(self) -> dict[str, Any]:
        rnd = self._round
        return {
            "job": self.config.job_name,
            "aggregation": self.aggregator.name,
            "protocol": PROTOCOL_VERSION,
            "exit_round": self.config.exit_round,
            "completed_rounds": self._completed,
            "phase": self.phase,
            "round": None
            if rnd is None
            else {
                "number": rnd.number,
                "attempt": rnd.attempt,
                "task": rnd.task,
                "asked": sorted(rnd.asked),
                "pending": sorted(rnd.pending),
                "answered": sorted(set(rnd.updates) | set(rnd.metrics)),
                "rejected": dict(rnd.rejected),
            },
            "clients": self.clients,
            "status": None if self._result is None else self._result.status,
            "stats": dict(self.stats),
            "history": self.history,
        }

    async def wait_until(self, predicate: Callable[[AggregationServer], bool]) -> None:
        """Wait (no timeout: wrap it) until ``predicate(server)`` holds; for tests and tools."""
        assert self._observers is not None, "start the server first"
        while True:
            event = self._observers
            if predicate(self):
                return
            await event.wait()

    # -- configuration -------------------------------------------------------------------
    @staticmethod
    def _check_config(cfg: AggregationServerConfig) -> None:
        if cfg.client_tokens is not None:
            try:
                _check_tokens(cfg.client_tokens)
            except ValueError as exc:
                raise ConfigError("client_tokens (AGG_CLIENT_TOKENS)", "...", str(exc)) from None
        if cfg.chunk_bytes < 1024:
            raise ConfigError("chunk_bytes (AGG_CHUNK_BYTES)", cfg.chunk_bytes, "at least 1024")

    def _service_config(self) -> AggregationServerConfig:
        # Joins authenticate inside the protocol; per-client tokens alone still protect
        # /metrics and /fl/status with a job token nobody else knows.
        if self._client_tokens and not self.config.token:
            return attrs.evolve(self.config, token=secrets.token_urlsafe(24))
        return self.config

    def _build_app(self) -> web.Application:
        app = create_app(name="aggregation", config=self._service_config(), clock=self.clock)
        metrics = app[METRICS_KEY]
        self._m_updates = metrics.counter(
            "sedna_fl_updates_total", "Client updates by outcome", ["outcome"]
        )
        self._m_rounds = metrics.counter("sedna_fl_rounds_total", "Rounds by outcome", ["outcome"])
        self._m_clients = metrics.gauge("sedna_fl_clients", "Connected clients")
        self._m_round = metrics.gauge("sedna_fl_round", "Training rounds completed")
        app.router.add_get(WS_PATH, self._ws_route)
        app.router.add_get(WS_PATH + "/status", self._status_route)
        app.router.add_get("/{aggregation}", self._sedna_route)
        return app

    # -- routes --------------------------------------------------------------------------
    async def _status_route(self, request: web.Request) -> web.Response:
        return web.json_response(self.status(), dumps=lambda d: json.dumps(d, default=float))

    @public
    async def _sedna_route(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            # Sedna's clients send whole models as JSON text: allow its larger frames here
            limit = max(self.config.chunk_bytes + _FRAME_SLACK, self.config.ws_size)
            return await self._websocket(request, limit)
        token = self._service_config().token
        if token and not check_bearer(request.headers.get("Authorization"), token):
            raise web.HTTPUnauthorized(text="missing or wrong bearer token")
        return web.json_response(sedna.info(self, request))

    @public
    async def _ws_route(self, request: web.Request) -> web.StreamResponse:
        return await self._websocket(request, self.config.chunk_bytes + _FRAME_SLACK)

    async def _websocket(self, request: web.Request, max_msg: int) -> web.StreamResponse:
        ws = await prepare_websocket(request, heartbeat=self.config.heartbeat, max_msg_size=max_msg)
        session: Session | None = None
        try:
            session = await self._admit(request, ws)
            if session is not None:
                await self._serve(session)
        finally:
            if session is not None:
                self._leave(session)
        return ws

    async def _admit(self, request: web.Request, ws: web.WebSocketResponse) -> Session | None:
        try:
            first = await asyncio.wait_for(ws.receive(), timeout=60.0)
        except TimeoutError:
            await ws.close(code=CLOSE_PROTOCOL, message=b"no join frame within 60 s")
            return None
        if first.type != WSMsgType.TEXT:
            await ws.close(code=CLOSE_PROTOCOL, message=b"the first frame must be a join")
            return None
        try:
            doc = json.loads(first.data)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and doc.get("type") == "subscribe" and "v" not in doc:
            return await sedna.admit(self, request, ws, doc)
        try:
            msg = parse_control(first.data)
            if msg["type"] != "join":
                raise ProtocolError(f"the first frame must be a join, got {msg['type']!r}")
            client_id = self._client_id(msg.get("client_id"))
        except ProtocolError as exc:
            await ws.send_str(_error("protocol", str(exc)))
            await ws.close(code=CLOSE_PROTOCOL, message=b"protocol error")
            return None
        if not self._authorised(client_id, msg.get("token")):
            return await self._refuse(ws, client_id)
        session = Session(client_id, ws, "native")
        self._register(session)
        asked = msg.get("aggregation")
        if isinstance(asked, str) and asked.casefold() != self.aggregator.name.casefold():
            self.log.info("client expects another aggregation", peer=client_id, asked=asked)
        await session.send(
            "welcome",
            job=self.config.job_name,
            aggregation=self.aggregator.name,
            exit_round=self.config.exit_round,
            completed_rounds=self._completed,
            chunk_bytes=self.config.chunk_bytes,
            round_deadline=self.config.round_deadline,
        )
        self._joined(session)
        return session

    def _client_id(self, value: Any) -> str:
        if not isinstance(value, str) or not _CLIENT_ID.match(value):
            raise ProtocolError(
                "client_id must be 1-128 characters: letters, digits and . _ : @ / -"
            )
        return value

    def _authorised(self, client_id: str, token: Any) -> bool:
        token = token if isinstance(token, str) else None
        if self._client_tokens is not None:
            expected = self._client_tokens.get(client_id)
            if expected is not None:
                return token is not None and secrets.compare_digest(token, expected)
            if self._job_token is None:
                return False
        if self._job_token is not None:
            return token is not None and secrets.compare_digest(token, self._job_token)
        return True

    async def _refuse(self, ws: web.WebSocketResponse, client_id: str) -> None:
        self.stats["refused"] += 1
        self.log.warning("client refused: wrong or missing token", peer=client_id)
        with contextlib.suppress(Exception):
            await ws.send_str(
                _error(
                    "unauthorized", "wrong or missing token for this client id; check SEDNA_TOKEN"
                )
            )
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
        return None

    def _register(self, session: Session) -> None:
        old = self._sessions.get(session.client_id)
        if old is not None:
            self.log.info("client reconnected; closing its old connection", peer=session.client_id)
            self._leave(old)
            self._spawn(old.close(CLOSE_REPLACED, "replaced by a newer connection"))
        self._sessions[session.client_id] = session
        self._m_clients.set(len(self._sessions))
        self.log.info("client joined", peer=session.client_id, kind=session.kind)

    async def _serve(self, session: Session) -> None:
        ws = session.ws
        async for msg in ws:
            if not session.alive:
                break
            if msg.type == WSMsgType.TEXT:
                if session.kind == "native":
                    await self._on_text(session, msg.data)
                else:
                    await sedna.on_text(self, session, msg.data)
            elif msg.type == WSMsgType.BINARY:
                if session.kind == "native":
                    await self._on_binary(session, msg.data)
            elif msg.type == WSMsgType.ERROR:
                self.log.info("connection error", peer=session.client_id, error=str(ws.exception()))
                break
        error = ws.exception()
        if ws.close_code == 1009 or getattr(error, "code", None) == 1009:
            self.stats["oversized_frames"] += 1
            self._m_updates.inc(outcome="rejected")
            self.log.warning(
                "client sent a frame over the size limit; connection closed",
                peer=session.client_id,
                limit=self.config.chunk_bytes + _FRAME_SLACK,
            )

    def _joined(self, session: Session) -> None:
        """A client (re)joined: bring it into the job where it stands."""
        self._notify()
        if self._result is not None:
            self._spawn(self._send_stop(session))
            return
        rnd = self._round
        if rnd is None or rnd.closed or session.kind != "native":
            if rnd is not None and session.kind == "sedna" and session.client_id in rnd.asked:
                rnd.pending.add(session.client_id)
            return
        cid = session.client_id
        answered = cid in rnd.updates or cid in rnd.metrics or cid in rnd.rejected
        rejoined = cid in rnd.asked and not answered
        newcomer = rnd.task == "train" and self.config.fraction >= 1.0 and not answered
        if rejoined or newcomer:
            rnd.asked.add(cid)
            rnd.pending.add(cid)
            rnd.failed.discard(cid)
            self._spawn(self._send_round(session, rnd))
        elif self._global is not None:
            # not asked this round: it still gets the current global model
            self._spawn(
                session.send_weights(
                    "round",
                    self._global,
                    self.config.chunk_bytes,
                    round=rnd.number,
                    attempt=rnd.attempt,
                    task="sync",
                    tensors=specs_json(self._specs or []),
                )
            )

    def _leave(self, session: Session) -> None:
        session.alive = False
        in_flight = session.receiver is not None
        session.drop_update()
        session.drop_waiting()
        if self._sessions.get(session.client_id) is not session:
            return
        del self._sessions[session.client_id]
        self._m_clients.set(len(self._sessions))
        rnd = self._round
        if rnd is not None and session.client_id in rnd.pending:
            rnd.pending.discard(session.client_id)
            rnd.failed.add(session.client_id)
            self.stats["disconnected_mid_round"] += 1
            self.log.warning(
                "client left mid-round",
                peer=session.client_id,
                round=rnd.number,
                update_in_flight=in_flight,
            )
        else:
            self.log.info("client left", peer=session.client_id)
        self._notify()

    # -- native protocol: messages -------------------------------------------------------
    async def _on_text(self, session: Session, text: str) -> None:
        session.discarding = False
        try:
            msg = parse_control(text)
        except ProtocolError as exc:
            await self._reject(session, None, exc)
            return
        kind = msg["type"]
        if kind == "update":
            await self._begin_update(session, msg)
        elif kind == "evaluation":
            await self._on_evaluation(session, msg)
        elif kind == "failed":
            self._on_client_failed(session, msg)
        elif kind == "leave":
            await session.close(1000, "goodbye")
        else:
            await self._reject(session, None, ProtocolError(f"unknown message type {kind!r}"))

    async def _begin_update(self, session: Session, msg: dict[str, Any]) -> None:
        if session.receiver is not None:  # a previous update never finished
            session.drop_update()
        number = msg.get("round")
        try:
            number = field(msg, "round", int)
            attempt = msg.get("attempt", 0)
            num_samples = check_num_samples(msg.get("num_samples"))
            rnd = self._round
            cid = session.client_id
            if (
                rnd is None
                or rnd.closed
                or rnd.task not in ("train", "init")
                or (number, attempt) != (rnd.number, rnd.attempt)
                or cid not in rnd.pending
            ):
                await self._late_or_unexpected(session, number, attempt)
                return
            specs = parse_specs(msg.get("tensors"), max_bytes=self.config.max_model_bytes)
            if self._specs is not None and rnd.task == "train":
                check_specs(specs, self._specs)
                specs = self._specs
            assert self._spool is not None
            session.receiver = UpdateReceiver(
                self._spool.new_file(), specs, num_samples, release=self._spool.release
            )
            session.receiving = (number, rnd.task)
            session.update_metrics = clean_metrics(msg.get("metrics"))
        except InvalidUpdateError as exc:
            session.discarding = True
            await self._reject(session, number if isinstance(number, int) else None, exc)

    async def _late_or_unexpected(self, session: Session, number: int, attempt: Any) -> None:
        session.discarding = True
        rnd = self._round
        current = rnd.number if rnd is not None else self._completed + 1
        stale = rnd is not None and number == rnd.number and (attempt != rnd.attempt or rnd.closed)
        if number < current or stale:
            await self._late(session, number)
        else:
            await self._reject(
                session,
                number,
                InvalidUpdateError(
                    "unexpected", f"round {number}: this client was not asked for an update"
                ),
            )

    async def _late(self, session: Session, number: int | None) -> None:
        self.stats["late"] += 1
        self._m_updates.inc(outcome="late")
        if self._round is not None:
            self._round.late += 1
        self.log.info("late update discarded", peer=session.client_id, round=number)
        await session.send(
            "late", round=number, message="the round closed before this update arrived; discarded"
        )

    async def _on_binary(self, session: Session, data: bytes) -> None:
        receiver = session.receiver
        if receiver is None:
            if not session.discarding:
                session.discarding = True
                await self._reject(
                    session,
                    None,
                    InvalidUpdateError("malformed", "binary frame outside an announced update"),
                )
            return
        assert session.receiving is not None
        number = session.receiving[0]
        try:
            complete = receiver.feed(data)
        except InvalidUpdateError as exc:
            session.drop_update()
            session.discarding = True
            await self._reject(session, number, exc)
            return
        if not complete:
            return
        source = receiver.finish()
        metrics = session.update_metrics
        session.receiver, session.receiving, session.update_metrics = None, None, {}
        rnd = self._round
        if (
            rnd is None or rnd.closed or rnd.number != number
        ):  # pragma: no cover - closed rounds drop receivers
            source.discard()
            await self._late(session, number)
            return
        rnd.updates[session.client_id] = source
        rnd.metrics[session.client_id] = (source.num_samples, metrics)
        rnd.pending.discard(session.client_id)
        self._m_updates.inc(outcome="accepted")
        self._notify()
        await session.send("accepted", round=number)

    async def _on_evaluation(self, session: Session, msg: dict[str, Any]) -> None:
        rnd = self._round
        cid = session.client_id
        try:
            number = field(msg, "round", int)
            num_samples = check_num_samples(msg.get("num_samples"))
        except InvalidUpdateError as exc:
            await self._reject(session, None, exc)
            return
        if rnd is None or rnd.task != "evaluate" or rnd.number != number or cid not in rnd.pending:
            await self._late(session, number)
            return
        rnd.metrics[cid] = (num_samples, clean_metrics(msg.get("metrics")))
        rnd.pending.discard(cid)
        self._notify()

    def _on_client_failed(self, session: Session, msg: dict[str, Any]) -> None:
        rnd = self._round
        cid = session.client_id
        self.log.warning(
            "client could not do its task",
            peer=cid,
            round=msg.get("round"),
            message=str(msg.get("message"))[:500],
        )
        if rnd is not None and cid in rnd.pending and msg.get("round") == rnd.number:
            rnd.pending.discard(cid)
            rnd.failed.add(cid)
            self._notify()

    async def _reject(self, session: Session, number: int | None, exc: InvalidUpdateError) -> None:
        self.stats[f"rejected_{exc.reason}"] += 1
        self._m_updates.inc(outcome="rejected")
        self.log.warning(
            "update rejected",
            peer=session.client_id,
            round=number,
            reason=exc.reason,
            error=str(exc),
        )
        rnd = self._round
        if rnd is not None and number == rnd.number and session.client_id in rnd.pending:
            rnd.pending.discard(session.client_id)
            rnd.rejected[session.client_id] = exc.reason
            self._notify()
        await session.send("rejected", round=number, reason=exc.reason, message=str(exc))

    # -- the job ---------------------------------------------------------------------------
    async def _job(self) -> None:
        cfg = self.config
        try:
            await self._resume()
            self.announce(
                "sedna_job_started",
                job_kind="federatedlearning",
                job_name=cfg.job_name,
                info={"aggregation": self.aggregator.name},
            )
            number = self._completed + 1
            while number <= cfg.exit_round:
                for attempt in range(cfg.max_retries + 1):
                    if await self._training_round(number, attempt):
                        break
                    self.stats["retries"] += 1
                else:
                    raise JobError(self._failure_message(number))
                if cfg.evaluate_every and (
                    number % cfg.evaluate_every == 0 or number == cfg.exit_round
                ):
                    await self._evaluation_round(number)
                number += 1
            await self._wait_checkpoint()
            result = FederatedResult("completed", self._completed, self._global, self.history)
            self.log.info("job completed", rounds=self._completed, stats=dict(self.stats))
        except asyncio.CancelledError:
            raise
        except JobError as exc:
            self.log.error("job failed", error=str(exc))
            result = FederatedResult(
                "failed", self._completed, self._global, self.history, message=str(exc)
            )
        except Exception as exc:  # a bug or a broken checkpoint: fail loudly, never hang
            self.log.exception("job failed unexpectedly")
            result = FederatedResult(
                "failed", self._completed, self._global, self.history, message=repr(exc)
            )
        self._result = result
        self.phase = "done"
        self.announce(
            "sedna_job_finished",
            job_kind="federatedlearning",
            job_name=cfg.job_name,
            status=result.status,
            info={"rounds": result.rounds, "message": result.message},
        )
        for session in list(self._sessions.values()):
            self._spawn(self._send_stop(session))
        assert self._done is not None
        self._done.set()
        self._notify()

    def _failure_message(self, number: int) -> str:
        cfg = self.config
        return (
            f"round {number} missed its quorum {cfg.max_retries + 1} time(s) in a row: it needs "
            f"{cfg.effective_quorum} valid update(s) within {cfg.round_deadline:g} s "
            f"({len(self._sessions)} client(s) connected now, stats {dict(self.stats)}). "
            "Start more clients, lower the quorum (AGG_QUORUM), or raise the deadline "
            "(AGG_ROUND_DEADLINE) or the retries (AGG_MAX_RETRIES)."
        )

    async def _training_round(self, number: int, attempt: int) -> bool:
        cfg = self.config
        quorum = cfg.effective_quorum
        started = self.clock.monotonic()
        deadline = started + cfg.round_deadline
        self.phase = "waiting"
        # The first round this process runs waits for everyone (a job start, or a restart:
        # the same clients as before); later ones start with whoever is there, given a quorum.
        need = quorum if self._rounds_run else cfg.participants_count
        await self._wait_for(lambda: len(self._sessions) >= need, deadline)
        if len(self._sessions) < quorum:
            self.log.warning(
                "too few clients connected for the quorum",
                round=number,
                attempt=attempt,
                clients=len(self._sessions),
                quorum=quorum,
            )
            self._m_rounds.inc(outcome="retried")
            return False
        sedna_only = not any(s.kind == "native" for s in self._sessions.values())
        needs_model = self._global is None and not sedna_only
        if needs_model and not await self._bootstrap(number, attempt, deadline):
            self._m_rounds.inc(outcome="retried")
            return False
        self._rounds_run += 1
        asked = select_clients(self._sessions, cfg.fraction, quorum, cfg.seed, number, attempt)
        rnd = Round(number, attempt, "train", asked, deadline, self.clock.monotonic())
        rnd.pending = set(asked)
        self._round = rnd
        self.phase = "train"
        sedna.take_waiting_updates(self, rnd)
        self._notify()
        self.log.info("round started", round=number, attempt=attempt, asked=len(asked))
        for cid in sorted(asked):
            session = self._sessions.get(cid)
            if session is not None and session.kind == "native":
                self._spawn(self._send_round(session, rnd))
        await self._wait_for(lambda: not rnd.pending, deadline)
        self._close_round(rnd)
        valid = len(rnd.updates)
        if valid < quorum:
            self.log.warning(
                "round missed its quorum; retrying",
                round=number,
                attempt=attempt,
                valid=valid,
                quorum=quorum,
                rejected=len(rnd.rejected),
                failed=len(rnd.failed),
                late=rnd.late,
            )
            rnd.discard_updates()
            self._m_rounds.inc(outcome="retried")
            return False
        clients = sorted(rnd.updates)
        sources = [rnd.updates[c] for c in clients]
        self.phase = "aggregate"
        await self._wait_checkpoint()  # it reads the aggregator state this round will change
        try:
            new = await asyncio.to_thread(self._aggregate, sources)
        finally:
            rnd.discard_updates()
        duration = self.clock.monotonic() - rnd.started
        self._global = new
        self._completed = number
        record = {
            "round": number,
            "attempt": attempt,
            "clients": clients,
            "num_samples": sum(s.num_samples for s in sources),
            "metrics": weighted_metrics({c: rnd.metrics[c] for c in clients}),
            "rejected": dict(rnd.rejected),
            "failed": sorted(rnd.failed),
            "missing": sorted(rnd.pending),
            "late": rnd.late,
            "duration": duration,
        }
        self.history.append(record)
        self._m_rounds.inc(outcome="completed")
        self._m_round.set(number)
        self._progress(record)
        self._checkpoint(number)
        self.announce(
            "sedna_round_aggregated",
            job_name=cfg.job_name,
            round_number=number,
            num_clients=len(clients),
            metrics=record["metrics"],
        )
        for cid in clients:
            session = self._sessions.get(cid)
            if session is not None and session.kind == "native":
                self._spawn(session.send("result", **_public_record(record)))
        sedna.broadcast_round(self, number, record)
        self._notify()
        return True

    async def _bootstrap(self, number: int, attempt: int, deadline: float) -> bool:
        """No global model yet: ask one client (the first by id) for its initial weights."""
        for cid in sorted(self._sessions):
            session = self._sessions.get(cid)
            if session is None or session.kind != "native":
                continue
            rnd = Round(number, attempt, "init", {cid}, deadline, self.clock.monotonic())
            rnd.pending = {cid}
            self._round = rnd
            self.phase = "init"
            self._spawn(self._send_round(session, rnd))
            await self._wait_for(lambda rnd=rnd: not rnd.pending, deadline)
            self._close_round(rnd)
            if cid in rnd.updates:
                source = rnd.updates.pop(cid)
                weights = source.arrays()
                source.discard()
                self._set_global(weights, [s.name for s in source.specs])
                self.log.info("initial model taken from a client", peer=cid, tensors=len(weights))
                return True
            if self.clock.monotonic() >= deadline:
                break
        return False

    async def _evaluation_round(self, number: int) -> None:
        cfg = self.config
        natives = [c for c, s in self._sessions.items() if s.kind == "native"]
        asked = select_clients(natives, cfg.evaluate_fraction, 1, cfg.seed, number, 1 << 20)
        if not asked or self._global is None:
            return
        started = self.clock.monotonic()
        rnd = Round(number, 0, "evaluate", asked, started + cfg.round_deadline, started)
        rnd.pending = set(asked)
        self._round = rnd
        self.phase = "evaluate"
        for cid in sorted(asked):
            self._spawn(self._send_round(self._sessions[cid], rnd))
        await self._wait_for(lambda: not rnd.pending, rnd.deadline)
        self._close_round(rnd)
        result = {
            "clients": sorted(rnd.metrics),
            "num_samples": sum(n for n, _ in rnd.metrics.values()),
            "metrics": weighted_metrics(rnd.metrics),
        }
        if self.history and self.history[-1]["round"] == number:
            self.history[-1]["evaluation"] = result
        self.log.info(
            "federated evaluation",
            round=number,
            clients=len(rnd.metrics),
            samples=result["num_samples"],
            **{f"eval_{k}": round(v, 6) for k, v in result["metrics"].items()},
        )
        if self.on_round is not None:
            with contextlib.suppress(Exception):
                self.on_round({"round": number, "evaluation": result})
        self._notify()

    def _close_round(self, rnd: Round) -> None:
        rnd.closed = True
        if self._round is rnd:
            self._round = None
        for session in self._sessions.values():
            if session.receiving is not None and session.receiving[0] == rnd.number:
                session.drop_update()
                session.discarding = True
                self._spawn(self._late(session, rnd.number))

    def _aggregate(self, sources: list[SpoolUpdate]) -> list[np.ndarray]:
        assert self._global is not None
        agg = self.aggregator
        agg.begin_round(self._global)
        for source in sources:
            agg.add_update(source)
        return agg.finish()

    async def _send_round(self, session: Session, rnd: Round) -> None:
        fields: dict[str, Any] = {
            "round": rnd.number,
            "attempt": rnd.attempt,
            "task": rnd.task,
            "exit_round": self.config.exit_round,
            "deadline": max(0.0, rnd.deadline - self.clock.monotonic()),
        }
        if rnd.task == "train":
            fields["config"] = self.aggregator.client_config()
        if rnd.task in ("train", "evaluate") and self._global is not None:
            ok = await session.send_weights(
                "round",
                self._global,
                self.config.chunk_bytes,
                tensors=specs_json(self._specs or []),
                **fields,
            )
        else:
            ok = await session.send("round", weights=False, **fields)
        if not ok and session.client_id in rnd.pending:
            rnd.pending.discard(session.client_id)
            rnd.failed.add(session.client_id)
            self._notify()

    async def _send_stop(self, session: Session) -> None:
        result = self._result
        assert result is not None
        if session.kind == "sedna":
            await sedna.send_stop(self, session, result)
            return
        if result.status == "completed" and result.weights is not None:
            await session.send_weights(
                "stop",
                result.weights,
                self.config.chunk_bytes,
                status="completed",
                round=result.rounds,
                tensors=specs_json(self._specs or []),
                message="job completed",
            )
        else:
            await session.send(
                "stop", status="failed", round=result.rounds, weights=False, message=result.message
            )
            await session.close(CLOSE_FAILED, "job failed")

    def _progress(self, record: dict[str, Any]) -> None:
        self.log.info(
            f"round {record['round']}/{self.config.exit_round} closed",
            round=record["round"],
            clients=len(record["clients"]),
            samples=record["num_samples"],
            seconds=round(record["duration"], 3),
            rejected=len(record["rejected"]),
            late=record["late"],
            metrics=describe(record["metrics"]),
        )
        if self.on_round is not None:
            try:
                self.on_round(record)
            except Exception:  # a progress printer must never break the job
                self.log.exception("on_round callback failed")

    # -- state, checkpoints ----------------------------------------------------------------
    def _set_global(self, weights: list[np.ndarray], names: Sequence[str | None] | None) -> None:
        fixed = [np.ascontiguousarray(w, dtype=w.dtype.newbyteorder("=")) for w in weights]
        self._global = fixed
        clean = None if names is None or any(n is None for n in names) else list(names)
        self._specs = specs_of(fixed, clean)  # type: ignore[arg-type]

    async def _resume(self) -> None:
        if self._ckpt is None or not self.config.resume:
            return
        ckpt = await asyncio.to_thread(self._ckpt.load)
        if ckpt is None:
            return
        saved = ckpt.metadata.get("aggregation")
        if saved and saved != self.aggregator.name:
            raise JobError(
                f"the checkpoint in {self._ckpt.path} was written by a {saved} job, this server "
                f"runs {self.aggregator.name}: use another checkpoint_dir or job name"
            )
        self._set_global(ckpt.weights, ckpt.names)
        self.aggregator.load_state_dict(ckpt.state)
        self._completed = min(ckpt.round, self.config.exit_round)
        history = ckpt.metadata.get("history")
        self.history = list(history) if isinstance(history, list) else []
        self.stats.update({k: int(v) for k, v in ckpt.metadata.get("stats", {}).items()})
        self._m_round.set(self._completed)
        self.log.info("resumed from checkpoint", completed_rounds=self._completed)

    def _checkpoint(self, number: int) -> None:
        if self._ckpt is None or self._global is None:
            return
        meta = {
            "aggregation": self.aggregator.name,
            "params": {
                k: v
                for k, v in self.aggregator.get_params().items()
                if isinstance(v, int | float | str | bool)
            },
            "exit_round": self.config.exit_round,
            "names": [s.name for s in self._specs]
            if self._specs and all(s.name is not None for s in self._specs)
            else None,
            "history": self.history,
            "stats": dict(self.stats),
        }
        weights, state = self._global, self.aggregator.state_dict()
        ckpt = self._ckpt
        self._ckpt_task = asyncio.ensure_future(
            asyncio.to_thread(ckpt.save, number, weights, state, meta)
        )

    async def _wait_checkpoint(self) -> None:
        task, self._ckpt_task = self._ckpt_task, None
        if task is None:
            return
        try:
            version = await task
            self.log.debug("checkpoint written", version=version)
        except Exception:
            self.stats["checkpoint_errors"] += 1
            self.log.exception("checkpoint failed; the job goes on without it")

    # -- plumbing ----------------------------------------------------------------------------
    def announce(self, hook: str, **kwargs: Any) -> None:
        from sedna_core.plugins import announce

        announce(hook, plugin_manager=self.plugin_manager, **kwargs)

    def _notify(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self.idle = False  # the job re-examines its state before it waits again
        self._tell_observers()

    def _tell_observers(self) -> None:
        if self._observers is not None:
            event, self._observers = self._observers, asyncio.Event()
            event.set()

    async def _wait_for(self, predicate: Callable[[], bool], deadline: float) -> bool:
        """Wait until ``predicate()`` or the clock passes ``deadline``; returns ``predicate()``."""
        assert self._changed is not None
        while True:
            self._changed.clear()
            if predicate():
                return True
            if self.clock.monotonic() >= deadline:
                return False
            # An absolute deadline: time that passes before the sleeper registers (a test's
            # advance() between these lines) still counts; a relative sleep would lose it.
            sleeper = asyncio.ensure_future(self.clock.asleep_until(deadline))
            waiter = asyncio.ensure_future(self._changed.wait())
            await asyncio.sleep(0)  # the sleeper is now registered with the clock
            self.idle = True
            self._tell_observers()
            try:
                await asyncio.wait({sleeper, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self.idle = False
                sleeper.cancel()
                waiter.cancel()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.log.error("background task failed", error=repr(task.exception()))


def _as_weight_list(
    weights: Sequence[np.ndarray] | Mapping[str, np.ndarray],
) -> tuple[list[np.ndarray], list[str] | None]:
    if isinstance(weights, Mapping):
        return [np.asarray(w) for w in weights.values()], [str(k) for k in weights]
    return [np.asarray(w) for w in weights], None


def _error(code: str, message: str) -> str:
    from sedna_core.jobs.federated._protocol import control

    return control("error", code=code, message=message)


def _public_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "round": record["round"],
        "clients": len(record["clients"]),
        "num_samples": record["num_samples"],
        "metrics": record["metrics"],
        "late": record["late"],
        "rejected": len(record["rejected"]),
    }
