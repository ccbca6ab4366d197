"""The round engine of the aggregation server: the job's loop of training rounds (client
selection, deadlines, quorum, retries), the initial model, federated evaluation, aggregation
and the stop message."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import all_finite
from sedna_core.algorithms.transform import TransformContext
from sedna_core.errors import JobError
from sedna_core.jobs.federated import _sedna_compat as sedna
from sedna_core.jobs.federated._protocol import CLOSE_FAILED, specs_json
from sedna_core.jobs.federated._rounds import (
    FederatedResult,
    Round,
    describe,
    select_clients,
    weighted_metrics,
)
from sedna_core.jobs.federated._session import Session
from sedna_core.jobs.federated._spool import SpoolUpdate
from sedna_core.wire import ChunkReader, SharedChunks

__all__ = ["RoundEngine"]

#: seconds of the job's clock between "waiting for clients" lines while nobody new joins
WAIT_REPORT_EVERY = 10.0


class RoundEngine:
    """Runs the job: rounds opened, waited on, closed, aggregated or retried.

    Part of :class:`~sedna_core.jobs.federated.AggregationServer` (``_server.py``), which
    holds the state these methods use.
    """

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
            stopped = ""
            while number <= cfg.exit_round:
                stopped = self.transforms.budget_exhausted(number) or ""
                if stopped:
                    # a privacy budget (or another transform's limit) ends the job cleanly,
                    # with the model of the last round that fit in it
                    self.log.warning("job stopped before its last round", reason=stopped)
                    break
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
            result = FederatedResult(
                "completed", self._completed, self._global, self.history, message=stopped
            )
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
        if self._secure_failure:
            return (
                f"round {number} failed {cfg.max_retries + 1} time(s) in a row, the previous "
                f"global model is kept. Secure aggregation: {self._secure_failure}. If clients are "
                "named as rejected in the log, stop them; otherwise start more clients, lower "
                "reconstruction_threshold, or raise the retries (AGG_MAX_RETRIES)."
            )
        return (
            f"round {number} missed its quorum {cfg.max_retries + 1} time(s) in a row: it needs "
            f"{cfg.effective_quorum} valid update(s) within {cfg.round_deadline:g} s "
            f"({len(self._sessions)} client(s) connected now, stats {dict(self.stats)}). "
            "Start more clients, lower the quorum (AGG_QUORUM), or raise the deadline "
            "(AGG_ROUND_DEADLINE) or the retries (AGG_MAX_RETRIES)."
        )

    async def _training_round(self, number: int, attempt: int) -> bool:
        cfg = self.config
        self._secure_failure = ""  # (why this attempt's secure stages failed, if they do)
        quorum = cfg.effective_quorum
        started = self.clock.monotonic()
        deadline = started + cfg.round_deadline
        self.phase = "waiting"
        # The first round this process runs waits for everyone (a job start, or a restart:
        # the same clients as before); later ones start with whoever is there, given a quorum.
        need = quorum if self._rounds_run else cfg.participants_count
        await self._wait_for_clients(need, deadline, number)
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
        natives = [self._sessions.get(cid) for cid in sorted(asked)]
        natives = [s for s in natives if s is not None and s.kind == "native"]
        shared = self._shared_model()
        for session in natives:
            self._spawn(self._send_round(session, rnd, shared.reader() if shared else None))
        secure = self.transforms.secure
        self._secure_round = None
        if secure is not None and not await self._secure_setup(rnd, secure):
            # too few clients left for the threshold (the reason is logged): kept model, retry
            self._close_round(rnd)
            rnd.discard_updates()
            self._m_rounds.inc(outcome="retried")
            return False
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
            sedna.keep_for_retry(self, rnd)
            rnd.discard_updates()
            self._m_rounds.inc(outcome="retried")
            return False
        if secure is not None and not await self._secure_unmask(rnd):
            rnd.discard_updates()
            self._m_rounds.inc(outcome="retried")
            return False
        clients = sorted(rnd.updates)
        sources = [rnd.updates[c] for c in clients]
        self.phase = "aggregate"
        await self._wait_checkpoint()  # it reads the aggregator state this round will change
        saved = {k: np.array(v, copy=True) for k, v in self.aggregator.state_dict().items()}
        saved_chain = {k: np.array(v, copy=True) for k, v in self.transforms.state_dict().items()}
        try:
            new = await asyncio.to_thread(
                self._aggregate, sources, number, [rnd.metrics[c][1] for c in clients]
            )
        except BaseException:
            rnd.discard_updates()
            raise
        broken = [i for i, w in enumerate(new) if not all_finite(w)]
        if broken:
            # Never let a non-finite model out: keep the old one (and the aggregator's state
            # as it was), name the cause, and let the round be retried like a missed quorum.
            self.aggregator.load_state_dict(saved)
            self.transforms.load_state_dict(saved_chain)
            self.stats["nonfinite_aggregates"] += 1
            self.log.error(
                "the aggregate holds NaN or infinite values; the previous global model is kept "
                "and the round is retried",
                round=number,
                attempt=attempt,
                tensors=broken[:10],
                aggregation=self.aggregator.name,
                clients=clients,
            )
            sedna.keep_for_retry(self, rnd)
            rnd.discard_updates()
            self._m_rounds.inc(outcome="retried")
            return False
        rnd.discard_updates()
        numbers, self._transform_numbers = self._transform_numbers, {}
        duration = self.clock.monotonic() - rnd.started
        self._global = new
        self._bound = None
        self._completed = number
        record = {
            "round": number,
            "attempt": attempt,
            "clients": clients,
            "num_samples": sum(s.num_samples for s in sources),
            # metrics named "_..." are for the transforms only (a DP clipping bit is private)
            "metrics": {
                k: v
                for k, v in weighted_metrics({c: rnd.metrics[c] for c in clients}).items()
                if not k.startswith("_")
            },
            "rejected": dict(rnd.rejected),
            "failed": sorted(rnd.failed),
            "missing": sorted(rnd.pending),
            "late": rnd.late,
            "duration": duration,
        }
        if numbers:
            record["transforms"] = numbers
            for name, value in numbers.items():
                self._m_transform.set(value, name=name)
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

    async def _wait_for_clients(self, need: int, deadline: float, number: int) -> bool:
        """Wait until ``need`` clients are connected or the deadline; says so while it waits
        (whenever the count changes, and every :data:`WAIT_REPORT_EVERY` s of the clock)."""
        shown = -1
        report = self.clock.monotonic()
        while True:
            have = len(self._sessions)
            if have >= need:
                return True
            now = self.clock.monotonic()
            if now >= deadline:
                return False
            if have != shown or now >= report:
                self.log.info(
                    f"waiting for clients: {have} of {need} joined, "
                    f"round deadline in {max(0.0, deadline - now):.0f} s",
                    round=number,
                    joined=have,
                    needed=need,
                )
                shown, report = have, now + WAIT_REPORT_EVERY
            await self._wait_for(
                lambda have=have: len(self._sessions) != have, min(deadline, report)
            )

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
        shared = self._shared_model()
        for cid in sorted(asked):
            self._spawn(
                self._send_round(self._sessions[cid], rnd, shared.reader() if shared else None)
            )
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

    def _aggregate(
        self,
        sources: list[SpoolUpdate],
        number: int = 0,
        client_metrics: list[dict[str, float]] | None = None,
    ) -> list[np.ndarray]:
        assert self._global is not None
        agg = self.aggregator
        chain = self.transforms
        base = self._global
        agg.begin_round(base)
        if self._secure_round is not None and self._secure_round.delta is not None:
            return self._aggregate_secure(sources, number)
        if not chain.acts_on_server:  # none, or compression only: the streaming path
            for source in sources:
                agg.add_update(source)
            if chain:
                self._transform_numbers = chain.end_round(
                    TransformContext(
                        number,
                        self._specs or [],
                        num_clients=len(sources),
                        total_clients=max(len(self._sessions), len(sources)),
                    )
                )
            return agg.finish()
        # With a transform chain the per-update step (server-side clipping) sees each delta;
        # the aggregate's delta then goes through the chain (central noise) before it is kept.
        ctx = TransformContext(
            number,
            self._specs or [],
            num_clients=len(sources),
            total_clients=max(len(self._sessions), len(sources)),
        )
        for i, source in enumerate(sources):
            ctx.metrics = dict(client_metrics[i]) if client_metrics else {}
            weights = [
                np.array(source.read(k, 0, g.size)).reshape(g.shape) for k, g in enumerate(base)
            ]
            delta = [np.subtract(w, g, dtype=g.dtype) for w, g in zip(weights, base, strict=True)]
            delta = chain.before_aggregation(delta, source.num_samples, ctx)
            agg.accumulate(
                [np.add(g, d, dtype=g.dtype) for g, d in zip(base, delta, strict=True)],
                source.num_samples,
            )
        new = agg.finish()
        ctx.metrics = {}
        delta = [np.subtract(w, g, dtype=g.dtype) for w, g in zip(new, base, strict=True)]
        delta = chain.after_aggregation(delta, ctx)
        self._transform_numbers = chain.end_round(ctx)
        return [np.add(g, d, dtype=g.dtype) for g, d in zip(base, delta, strict=True)]

    def _shared_model(self) -> SharedChunks | None:
        """The global model's frames, encoded once for all the clients a round is sent to
        (one copy of the model held while they stream, not one frame per client)."""
        if self._global is None:
            return None
        return SharedChunks(list(self._global), chunk_bytes=self.config.chunk_bytes)

    async def _send_round(
        self, session: Session, rnd: Round, frames: ChunkReader | None = None
    ) -> None:
        fields: dict[str, Any] = {
            "round": rnd.number,
            "attempt": rnd.attempt,
            "task": rnd.task,
            "exit_round": self.config.exit_round,
            "deadline": max(0.0, rnd.deadline - self.clock.monotonic()),
        }
        if rnd.task == "train":
            fields["config"] = self.aggregator.client_config()
            if self.transforms:
                fields["transforms"] = self.transforms.round_config()
        classes = self._fix_classes()
        if classes is not None:
            fields["classes"] = classes
        if rnd.task in ("train", "evaluate") and self._global is not None:
            if frames is None:
                frames = SharedChunks(list(self._global), chunk_bytes=self.config.chunk_bytes)
                frames = frames.reader()
            ok = await session.send_frames(
                "round", frames, tensors=specs_json(self._specs or []), **fields
            )
        else:
            if frames is not None:
                frames.close()
            ok = await session.send("round", weights=False, **fields)
        if not ok and session.client_id in rnd.pending:
            rnd.pending.discard(session.client_id)
            rnd.failed.add(session.client_id)
            self._notify()

    def _fix_classes(self) -> list[Any] | None:
        """The job's classes: the union of the labels the connected clients announced, fixed
        the first time a round is sent (round 1 waits for every participant), so that every
        classifier lays its weights out alike even when each client sees only some labels."""
        if self._classes is None:
            announced = [s.labels for s in self._sessions.values() if s.labels]
            if announced:
                union = set().union(*announced)
                self._classes = sorted(union, key=lambda v: (isinstance(v, str), v))
                self.log.info("classes fixed", classes=len(self._classes))
        return self._classes

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
        # Printed once: by on_round when there is one (the CLI's progress line), else here
        emit = self.log.debug if self.on_round is not None else self.log.info
        extra = {"metrics": describe(record["metrics"])} if record["metrics"] else {}
        if record.get("transforms"):
            extra["transforms"] = describe(record["transforms"])
        emit(
            f"round {record['round']}/{self.config.exit_round} closed",
            round=record["round"],
            clients=len(record["clients"]),
            samples=record["num_samples"],
            seconds=round(record["duration"], 3),
            rejected=len(record["rejected"]),
            late=record["late"],
            **extra,
        )
        if self.on_round is not None:
            try:
                self.on_round(record)
            except Exception:  # a progress printer must never break the job
                self.log.exception("on_round callback failed")


def _public_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "round": record["round"],
        "clients": len(record["clients"]),
        "num_samples": record["num_samples"],
        "metrics": record["metrics"],
        "late": record["late"],
        "rejected": len(record["rejected"]),
    }
