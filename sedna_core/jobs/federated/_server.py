"""The aggregation server: ``AggregationServer``, its public API, configuration and state.

The server is one object put together from its parts: websocket connections
(``_connections``), the native protocol's client messages (``_client_messages``), the round
engine (``_round_engine``) and checkpoint hooks (``_checkpoint``). This module owns the
state they share and the event-loop plumbing (notifications, deadline waits, tasks).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from aiohttp import web

from sedna_core.algorithms.aggregation import BaseAggregation, TensorSpec, specs_of
from sedna_core.clock import Clock, SystemClock
from sedna_core.config.federated import AggregationServerConfig, _check_tokens
from sedna_core.errors import ConfigError
from sedna_core.jobs.federated._checkpoint import CheckpointStore, ServerCheckpoints
from sedna_core.jobs.federated._client_messages import ClientMessages
from sedna_core.jobs.federated._connections import ServerConnections
from sedna_core.jobs.federated._protocol import PROTOCOL_VERSION, WS_PATH
from sedna_core.jobs.federated._round_engine import RoundEngine
from sedna_core.jobs.federated._rounds import FederatedResult, Round
from sedna_core.jobs.federated._secagg import SecureRoundState, SecureStages
from sedna_core.jobs.federated._session import Session
from sedna_core.jobs.federated._spool import SpoolDir, UpdateBound
from sedna_core.log import configure_logging, get_logger
from sedna_core.service import METRICS_KEY, BackgroundLoop, ServiceRunner, create_app

__all__ = ["AggregationServer"]

log = get_logger(__name__)


class AggregationServer(
    ServerConnections, ClientMessages, RoundEngine, SecureStages, ServerCheckpoints
):
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
    spool_dir
        Where updates are spooled while they arrive (default: a disk-backed temporary
        directory, ``/var/tmp`` where it exists; the location is logged).
    chunk_bytes
        Largest frame of weights the server sends (the global model goes out in chunks of
        this size; at least 1024; ``AGG_CHUNK_BYTES``).
    max_num_samples
        Largest ``num_samples`` one update may claim (default 10**9).
    max_update_ratio, max_update_norm
        An update is refused when ``||update - global||_2 > max_update_ratio * ||global||_2 +
        max_update_norm`` (defaults 100 and 1e9); a refusal counts as that client's failure
        for the round.
    pre_auth_bytes
        Largest frame read from a connection before it is authenticated (default 64 KiB).
    sedna_compat
        Whether clients speaking Sedna's JSON protocol (``subscribe`` / ``update_weight`` /
        ``recv_weight``) are accepted (default True; ``AGG_SEDNA_COMPAT``).
    job_name
        The job's name, in logs, checkpoints and status (default ``JOB_NAME``, else
        ``"sedna"``).
    plugin_manager
        The plugin manager that resolves the aggregation and transforms by name (None: the
        default one).
    transforms
        The job's update-transform chain, in order (kind ``update_transform``: clipping, noise,
        compression; see ``docs/federated-learning.md``): a list of names or
        ``{"method": ..., "param": {...}}`` specs, or ``AGG_TRANSFORMS``. Announced to clients,
        which refuse to join when they lack a piece; Sedna-protocol clients are refused when a
        piece acts on the client.
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
        max_num_samples: int | None = None,
        max_update_ratio: float | None = None,
        max_update_norm: float | None = None,
        pre_auth_bytes: int | None = None,
        initial_weights: Sequence[np.ndarray] | Mapping[str, np.ndarray] | None = None,
        sedna_compat: bool | None = None,
        transforms: Any = None,
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
            "max_num_samples": max_num_samples,
            "max_update_ratio": max_update_ratio,
            "max_update_norm": max_update_norm,
            "pre_auth_bytes": pre_auth_bytes,
            "sedna_compat": sedna_compat,
            "transforms": transforms,
            "job_name": job_name,
        }
        given = {k: v for k, v in explicit.items() if v is not None}
        cfg = attrs.evolve(config, **given) if config else AggregationServerConfig.from_env(**given)
        self._check_config(cfg)
        self.config = cfg
        self.clock: Clock = clock or SystemClock()
        self.plugin_manager = plugin_manager
        self.on_round = on_round
        from sedna_core.plugins import create_algorithm

        algo = create_algorithm("aggregation", cfg.algorithm_spec(), plugin_manager=plugin_manager)
        assert isinstance(algo, BaseAggregation)
        self.aggregator: BaseAggregation = algo
        from sedna_core.jobs.federated._transforms import TransformChain

        self.transforms = TransformChain.build(cfg.transforms, plugin_manager=plugin_manager)
        # a secure aggregation hides single updates: refuse what needs them, at start
        self.transforms.check_secure(algo, given)
        #: the open secure-aggregation round, and why the last one failed (for the job's message)
        self._secure_round: SecureRoundState | None = None
        self._secure_failure = ""
        self._secure_left_out: dict[int, set[str]] = {}
        #: what the chain reported for the last round (privacy spent...), in each round record
        self._transform_numbers: dict[str, float] = {}
        self.log = log.bind(job=cfg.job_name, aggregation=algo.name)
        self._job_token = cfg.token
        self._client_tokens = cfg.client_tokens
        self._global: list[np.ndarray] | None = None
        self._specs: list[TensorSpec] | None = None
        self._bound: UpdateBound | None = None  # for the current global model, made on demand
        #: the job's classes: the union of the labels clients announced, fixed before round 1
        self._classes: list[Any] | None = None
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
        self._background = BackgroundLoop("sedna-aggregation")
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
        """Wait for the job to end (the server must be started).

        Returns
        -------
        FederatedResult
            The job's result (``status`` may be ``"failed"``).
        """
        assert self._done is not None, "start the server first"
        await self._done.wait()
        assert self._result is not None
        return self._result

    async def astop(self) -> None:
        """Stop now: cancel the job, close every connection, stop listening, remove the spool."""
        if self._runner is None and self._spool is None:
            return
        unfinished = self._result is None
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
        if self._ckpt is not None:
            self._ckpt.close()
        spool = None
        if self._spool is not None:
            spool = str(self._spool.path)
            self._spool.close()
            self._spool = None
        self.log.info(
            "aggregation server stopped" + (" before the job ended" if unfinished else ""),
            completed_rounds=self._completed,
            spool_removed=spool,
        )

    async def run(self) -> FederatedResult:
        """Serve until the job ends and reconnecting clients had ``linger`` seconds to learn it.

        In the main thread, SIGTERM and SIGINT stop the server cleanly (connections closed,
        spool removed, shutdown logged: a pod being deleted); the result is then ``failed``
        with a message saying so.

        Returns
        -------
        FederatedResult
            The job's result (``"failed"`` when a signal stopped it first).
        """
        await self.astart()
        stop = asyncio.Event()
        signals = _stop_on_signals(stop)
        try:
            job = asyncio.ensure_future(self.wait())
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({job, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
            if not job.done():
                job.cancel()
                self.log.warning("stopping on a signal before the job ended")
                return FederatedResult(
                    "failed",
                    self._completed,
                    self._global,
                    self.history,
                    message="stopped by a signal before the job ended",
                )
            result = job.result()
            await self.linger()
            return result
        finally:
            for sig in signals:
                with contextlib.suppress(Exception):
                    asyncio.get_running_loop().remove_signal_handler(sig)
            await self.astop()

    async def linger(self) -> None:
        """After the job: wait until every client left, at most ``linger`` seconds."""
        deadline = self.clock.monotonic() + self.config.linger
        await self._wait_for(lambda: not self._sessions, deadline)

    def start(self) -> FederatedResult:
        """Serve the whole job (blocking, as Sedna's ``start()``).

        Returns
        -------
        FederatedResult
            The job's result, as :meth:`run` returns it.
        """
        return asyncio.run(self.run())

    def start_in_background(self) -> None:
        """Serve from a daemon thread (for synchronous programs); returns once listening."""
        self._background.start(self.astart, timeout=60.0)

    def wait_background(self, timeout: float | None = None) -> FederatedResult:
        """Block until the background server's job ends.

        Parameters
        ----------
        timeout
            Seconds to wait at most (None: no limit).

        Returns
        -------
        FederatedResult
            The job's result.
        """
        return self._background.run(self.wait(), timeout=timeout)

    def stop_background(self) -> None:
        """Stop the server started with :meth:`start_in_background` (as :meth:`astop`)."""
        with contextlib.suppress(Exception):
            self._background.stop(self.astop, timeout=30.0)

    @property
    def port(self) -> int:
        """The TCP port the started server listens on."""
        assert self._runner is not None, "the server is not started"
        return self._runner.port

    @property
    def url(self) -> str:
        """The ``http(s)://host:port`` of the started server."""
        assert self._runner is not None, "the server is not started"
        return self._runner.url

    @property
    def ws_url(self) -> str:
        """The ``ws(s)://host:port`` of the started server (clients' ``address``)."""
        assert self._runner is not None, "the server is not started"
        return self._runner.ws_url

    @property
    def global_weights(self) -> list[np.ndarray] | None:
        """The current global model (one array per tensor), or None before it is known."""
        return self._global

    @property
    def clients(self) -> list[str]:
        """The ids of the connected clients, sorted."""
        return sorted(self._sessions)

    @property
    def current_round(self) -> Round | None:
        """The open round (attempt), if any."""
        return self._round

    def status(self) -> dict[str, Any]:
        """The server's state now, as JSON-ready data (what ``GET /fl/status`` answers).

        Returns
        -------
        dict
            ``job``, ``aggregation``, ``protocol``, ``exit_round``, ``completed_rounds``,
            ``phase``, ``round`` (None, or the open round's ``number``, ``attempt``, ``task``,
            ``asked``, ``pending``, ``answered``, ``rejected``), ``clients``, ``spool`` (None,
            or its ``path`` and ``filesystem``), ``status`` (None until the job ends),
            ``stats`` and ``history``.
        """
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
            "spool": None
            if self._spool is None
            else {"path": str(self._spool.path), "filesystem": self._spool.filesystem},
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
        """Refuse impossible settings at start, one line each (explicit arguments skip the
        environment's converters, so every bound is checked here)."""
        if cfg.client_tokens is not None:
            try:
                _check_tokens(cfg.client_tokens)
            except ValueError as exc:
                raise ConfigError("client_tokens (AGG_CLIENT_TOKENS)", "...", str(exc)) from None

        def need(ok: bool, name: str, value: Any, accepted: str) -> None:
            if not ok:
                raise ConfigError(name, value, accepted)

        def number(value: Any) -> bool:
            return isinstance(value, int | float) and not isinstance(value, bool)

        def whole(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        need(
            whole(cfg.exit_round) and cfg.exit_round >= 1,
            "exit_round (EXIT_ROUND, --exit-round)",
            cfg.exit_round,
            "an integer >= 1",
        )
        need(
            whole(cfg.participants_count) and cfg.participants_count >= 1,
            "participants_count (PARTICIPANTS_COUNT, --participants)",
            cfg.participants_count,
            "an integer >= 1",
        )
        if cfg.quorum is not None:
            need(
                whole(cfg.quorum) and 1 <= cfg.quorum <= cfg.participants_count,
                "quorum (AGG_QUORUM, --quorum)",
                cfg.quorum,
                f"an integer from 1 to participants_count ({cfg.participants_count}): a round "
                "cannot need more updates than the clients it waits for",
            )
        need(
            number(cfg.round_deadline) and 0 < cfg.round_deadline < float("inf"),
            "round_deadline (AGG_ROUND_DEADLINE, --deadline)",
            cfg.round_deadline,
            "a number of seconds > 0",
        )
        for name, value in (
            ("fraction (AGG_FRACTION, --fraction)", cfg.fraction),
            (
                "evaluate_fraction (AGG_EVALUATE_FRACTION, --evaluate-fraction)",
                cfg.evaluate_fraction,
            ),
        ):
            need(number(value) and 0 < value <= 1, name, value, "a number in (0, 1]")
        for name, value in (
            ("evaluate_every (AGG_EVALUATE_EVERY, --evaluate-every)", cfg.evaluate_every),
            ("max_retries (AGG_MAX_RETRIES, --max-retries)", cfg.max_retries),
        ):
            need(whole(value) and value >= 0, name, value, "an integer >= 0")
        need(
            whole(cfg.port) and 0 <= cfg.port <= 65535,
            "port (AGG_BIND_PORT, --port)",
            cfg.port,
            "a port from 0 to 65535",
        )
        need(
            whole(cfg.chunk_bytes) and cfg.chunk_bytes >= 1024,
            "chunk_bytes (AGG_CHUNK_BYTES)",
            cfg.chunk_bytes,
            "at least 1024",
        )
        need(
            whole(cfg.max_num_samples) and cfg.max_num_samples >= 1,
            "max_num_samples (AGG_MAX_NUM_SAMPLES)",
            cfg.max_num_samples,
            "an integer >= 1",
        )
        for name, value in (
            ("max_update_ratio (AGG_MAX_UPDATE_RATIO)", cfg.max_update_ratio),
            ("max_update_norm (AGG_MAX_UPDATE_NORM)", cfg.max_update_norm),
        ):
            need(number(value) and value > 0, name, value, "a number > 0")
        need(
            whole(cfg.pre_auth_bytes) and 1024 <= cfg.pre_auth_bytes <= 16 << 20,
            "pre_auth_bytes (AGG_PRE_AUTH_BYTES)",
            cfg.pre_auth_bytes,
            "an integer from 1024 to 16777216 (a join frame's worth)",
        )
        need(
            number(cfg.linger) and cfg.linger >= 0,
            "linger (AGG_LINGER, --linger)",
            cfg.linger,
            "a number of seconds >= 0",
        )

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
        self._m_transform = metrics.gauge(
            "sedna_fl_transform_value",
            "Numbers the update transforms report (privacy spent: epsilon, delta; clipping norm)",
            ["name"],
        )
        app.router.add_get(WS_PATH, self._ws_route)
        app.router.add_get(WS_PATH + "/status", self._status_route)
        app.router.add_get("/{aggregation}", self._sedna_route)
        return app

    # -- state -----------------------------------------------------------------------------
    def _set_global(self, weights: list[np.ndarray], names: Sequence[str | None] | None) -> None:
        fixed = [np.ascontiguousarray(w, dtype=w.dtype.newbyteorder("=")) for w in weights]
        self._global = fixed
        self._bound = None
        clean = None if names is None or any(n is None for n in names) else list(names)
        self._specs = specs_of(fixed, clean)  # type: ignore[arg-type]

    def _update_bound(self) -> UpdateBound | None:
        """How far an update may lie from the current global model (None before there is
        one); its norm is computed once per global model."""
        if self._global is None:
            return None
        if self._bound is None:
            cfg = self.config
            self._bound = UpdateBound(self._global, cfg.max_update_ratio, cfg.max_update_norm)
        return self._bound

    # -- plumbing ----------------------------------------------------------------------------
    def announce(self, hook: str, **kwargs: Any) -> None:
        """Call the lifecycle hook ``hook`` on every plugin (plugin errors are logged).

        Parameters
        ----------
        hook
            The hook's name (e.g. ``"sedna_job_started"``).
        **kwargs
            The hook's arguments.
        """
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


def _stop_on_signals(stop: asyncio.Event) -> list[int]:
    """Set ``stop`` on SIGTERM/SIGINT where this loop can handle signals (the main thread)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return []
    loop = asyncio.get_running_loop()
    done = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, nested loops
            continue
        done.append(sig)
    return done


def _as_weight_list(
    weights: Sequence[np.ndarray] | Mapping[str, np.ndarray],
) -> tuple[list[np.ndarray], list[str] | None]:
    if isinstance(weights, Mapping):
        return [np.asarray(w) for w in weights.values()], [str(k) for k in weights]
    return [np.asarray(w) for w in weights], None
