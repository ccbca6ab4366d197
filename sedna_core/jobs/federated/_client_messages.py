"""Native-protocol messages from clients on the aggregation server: updates received chunk
by chunk, evaluations, failures, rejections and late answers."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from sedna_core.algorithms.aggregation import check_num_samples
from sedna_core.algorithms.transform import TransformContext
from sedna_core.errors import InvalidUpdateError, ProtocolError
from sedna_core.jobs.federated._protocol import (
    check_specs,
    clean_metrics,
    compatible_dtype,
    field,
    parse_control,
    parse_specs,
)
from sedna_core.jobs.federated._secagg import SECAGG_FRAMES
from sedna_core.jobs.federated._session import Session
from sedna_core.jobs.federated._spool import SpoolUpdate, UpdateBound, UpdateReceiver

__all__ = ["ClientMessages"]


class ClientMessages:
    """What the server does with each text or binary frame of a native client.

    Part of :class:`~sedna_core.jobs.federated.AggregationServer` (``_server.py``), which
    holds the state these methods use.
    """

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
        elif kind in SECAGG_FRAMES:
            await self._on_secagg(session, msg)
        else:
            await self._reject(session, None, ProtocolError(f"unknown message type {kind!r}"))

    async def _begin_update(self, session: Session, msg: dict[str, Any]) -> None:
        if session.receiver is not None:  # a previous update never finished
            session.drop_update()
        number = msg.get("round")
        try:
            number = field(msg, "round", int)
            attempt = msg.get("attempt", 0)
            num_samples = check_num_samples(msg.get("num_samples"), self.config.max_num_samples)
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
            secure = rnd.task == "train" and self.transforms.secure is not None
            if secure and not self._secure_accepts(cid):
                raise InvalidUpdateError(
                    "secagg", "a masked update may only follow the secure-aggregation key stages"
                )
            specs = parse_specs(msg.get("tensors"), max_bytes=self.config.max_model_bytes)
            # In a job with update transforms a trained update arrives encoded (a delta in the
            # chain's wire format): its frames are checked against the wire tensors here, and
            # the decoded update against the model and the bound when it is complete.
            encoded = bool(self.transforms) and rnd.task == "train" and self._specs is not None
            if self._specs is not None and rnd.task == "train":
                expected = self.transforms.wire_specs(self._specs) if encoded else self._specs
                check_specs(specs, expected)
                specs = expected
            assert self._spool is not None
            session.receiver = UpdateReceiver(
                self._spool.new_file(),
                specs,
                num_samples,
                release=self._spool.release,
                # the first model a client provides (task "init") has nothing to be near to
                bound=self._update_bound() if rnd.task == "train" and not encoded else None,
            )
            session.receiver.encoded = encoded
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
        if receiver.encoded and self.transforms.secure is None:
            # (a securely aggregated update stays masked in its spool: only the sum is read)
            try:
                bound = self._update_bound()
                source = await asyncio.to_thread(self._decode_update, source, number, bound)
            except InvalidUpdateError as exc:
                await self._reject(session, number, exc)
                return
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

    def _decode_update(
        self, source: SpoolUpdate, number: int, bound: UpdateBound | None
    ) -> SpoolUpdate:
        """An encoded update (wire tensors, already checked) decoded into the global model plus
        its delta, spooled through the same checks as any update: dtype, shape, finite values
        in the model's dtype, the distance bound. Runs in a worker thread."""
        try:
            wire = source.arrays()
        finally:
            source.discard()
        assert self._global is not None and self._specs is not None and self._spool is not None
        ctx = TransformContext(number, self._specs)
        delta = self.transforms.decode(wire, ctx)
        if not isinstance(delta, list) or len(delta) != len(self._specs):
            raise InvalidUpdateError(
                "count", f"the decoded update does not have the model's {len(self._specs)} tensors"
            )
        receiver = UpdateReceiver(
            self._spool.new_file(),
            self._specs,
            source.num_samples,
            release=self._spool.release,
            bound=bound,
        )
        try:
            for i, (d, g) in enumerate(zip(delta, self._global, strict=True)):
                d = np.asarray(d)
                if d.shape != g.shape or not compatible_dtype(d.dtype, g.dtype):
                    raise InvalidUpdateError(
                        "decode",
                        f"decoded tensor {i} is {d.dtype}{list(d.shape)}, the model's is "
                        f"{g.dtype}{list(g.shape)}",
                    )
                with np.errstate(over="ignore", invalid="ignore"):
                    receiver.write_tensor(i, np.add(g, d, dtype=g.dtype))
            return receiver.finish()
        except BaseException:
            receiver.discard()
            raise

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
