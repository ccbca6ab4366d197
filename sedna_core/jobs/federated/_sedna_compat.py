"""Mixed fleets: clients speaking KubeEdge Sedna's JSON websocket protocol in a native job.

Sedna's client connects to ``ws://AGG_IP:AGG_PORT/{aggregation}``, sends
``{"type": "subscribe", "client_id": id}``, waits for the echo, then loops: train, send
``{"type": "update_weight", "client": id, "data": {"num_samples": n, "weights": nested lists}}``,
wait for ``{"type": "recv_weight", "data": {"weights": ..., "exit_flag": "ok"|"continue", ...}}``.

Here such a client is one more participant: its updates are converted to arrays, checked
exactly as native updates (shapes, a dtype convertible to the model's, finite values, the
sample-count and distance bounds) and spooled; an update that arrives while no round is open
waits for the next round (Sedna clients train unasked); after every round each Sedna client
gets ``recv_weight`` with the new global model. A Sedna client cannot resend: its accepted
update stays with the round through retries, and a refused one is dropped while the round
closes with the others. Sedna's protocol has no tokens: when the server has one, a Sedna client
passes it as ``?token=`` in its URL (its ``aggregation`` string may carry it:
``FedAvg?token=...``) or as a bearer header.

The server sends only frames it built itself: unlike Sedna's server it never relays a client's
frame to other clients (a forged ``recv_weight`` would reach them past every check), and it
answers ``subscribe`` with an acknowledgement built from the validated client id, not an echo.
JSON numbers are doubles: a model first learned from a Sedna client is float64, as Sedna's own
server averages.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from aiohttp import web

from sedna_core.algorithms.aggregation import check_num_samples
from sedna_core.errors import InvalidUpdateError
from sedna_core.jobs.federated._protocol import CLOSE_FAILED, CLOSE_PROTOCOL
from sedna_core.jobs.federated._rounds import FederatedResult, Round
from sedna_core.jobs.federated._session import Session
from sedna_core.jobs.federated._spool import UpdateReceiver

if TYPE_CHECKING:
    from sedna_core.jobs.federated._server import AggregationServer

__all__ = [
    "admit",
    "broadcast_round",
    "info",
    "keep_for_retry",
    "on_text",
    "send_stop",
    "take_waiting_updates",
]


async def admit(
    server: AggregationServer, request: web.Request, ws: web.WebSocketResponse, doc: dict[str, Any]
) -> Session | None:
    """Admit a client whose first frame was Sedna's ``subscribe``."""
    if not server.config.sedna_compat:
        await ws.close(
            code=CLOSE_PROTOCOL, message=b"Sedna's protocol is disabled (AGG_SEDNA_COMPAT)"
        )
        return None
    if server.transforms.client_side:
        # Sedna's clients send raw weights: they cannot clip, noise or compress them
        reason = (
            f"this job's update transforms {server.transforms.client_side} act on the client; "
            "Sedna-protocol clients cannot apply them: use sedna-core's FederatedLearning client"
        )
        server.stats["refused_transforms"] += 1
        server.log.warning("Sedna-protocol client refused", reason=reason)
        await ws.close(
            code=CLOSE_PROTOCOL,
            message=b"this job's update transforms act on clients; Sedna's clients cannot join",
        )
        return None
    try:
        client_id = server._client_id(doc.get("client_id"))
    except InvalidUpdateError as exc:
        await server._protocol_close(ws, str(exc))
        return None
    token = request.query.get("token")
    header = request.headers.get("Authorization", "")
    if token is None and header.lower().startswith("bearer "):
        token = header[7:].strip()
    if not server._authorised(client_id, token):
        return await server._refuse(ws, client_id)
    if not await server._may_take(ws, client_id):
        return None
    server._lift_frame_limit(request, ws)
    session = Session(client_id, ws, "sedna")
    server._register(session)
    # Built here from the validated id: the subscriber's own frame is never sent anywhere
    joined = {"type": "CLIENT_JOIN", "data": client_id}
    for other in list(server._sessions.values()):
        if other.kind == "sedna" and other is not session:
            await other.send_json(joined)
    await session.send_json({"type": "subscribe", "client_id": client_id})
    server._joined(session)
    return session


async def on_text(server: AggregationServer, session: Session, text: str) -> None:
    try:
        doc = json.loads(text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        await _reject(
            server, session, InvalidUpdateError("malformed", "frame is not a JSON object")
        )
        return
    if doc.get("type") != "update_weight":
        # Sedna's server relays every other frame to every client; that would let one client
        # forge server messages (a recv_weight with exit_flag "ok") for the others: dropped.
        server.stats["ignored_sedna_frames"] += 1
        kind = doc.get("type")
        server.log.info(
            "Sedna-protocol frame ignored (only update_weight is read; nothing is relayed)",
            peer=session.client_id,
            type=kind[:64] if isinstance(kind, str) else None,
        )
        return
    try:
        source = _spool(server, session, doc.get("data"))
    except InvalidUpdateError as exc:
        await _reject(server, session, exc)
        return
    rnd = server._round
    cid = session.client_id
    if rnd is not None and not rnd.closed and rnd.task == "train" and cid in rnd.pending:
        rnd.updates[cid] = source
        rnd.metrics[cid] = (source.num_samples, {})
        rnd.pending.discard(cid)
        server._m_updates.inc(outcome="accepted")
        server._notify()
    else:  # trained unasked: it waits for the next round that asks this client
        session.drop_waiting()
        session.waiting_update = source
        session.refused = None


def _spool(server: AggregationServer, session: Session, data: Any) -> Any:
    if not isinstance(data, dict) or not isinstance(data.get("weights"), list):
        raise InvalidUpdateError("malformed", "update_weight needs data.weights (nested lists)")
    num_samples = check_num_samples(data.get("num_samples"), server.config.max_num_samples)
    layers = data["weights"]
    if server._specs is None:  # nobody told us the model yet: this update does
        try:
            # JSON numbers are doubles: float64, as Sedna's own server averages them
            arrays = [np.asarray(x, dtype=np.float64) for x in layers]
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidUpdateError(
                "malformed", f"weights are not numeric arrays: {exc}"
            ) from None
        server._set_global(arrays, None)
    specs = server._specs
    assert specs is not None and server._spool is not None
    if len(layers) != len(specs):
        raise InvalidUpdateError(
            "count", f"update has {len(layers)} tensors, the global model has {len(specs)}"
        )
    receiver = UpdateReceiver(
        server._spool.new_file(),
        specs,
        num_samples,
        release=server._spool.release,
        bound=server._update_bound(),
    )
    try:
        for i, layer in enumerate(layers):
            try:
                # the JSON's own type (float64 for numbers); converted to the model's dtype
                values = np.asarray(layer)
                if values.dtype == object:
                    raise ValueError("ragged or mixed nested lists")
            except (ValueError, TypeError, OverflowError) as exc:
                raise InvalidUpdateError(
                    "malformed", f"tensor {i} is not a numeric array: {exc}"
                ) from None
            receiver.write_tensor(i, values)
        return receiver.finish()
    except BaseException:
        receiver.discard()
        raise


async def _reject(server: AggregationServer, session: Session, exc: InvalidUpdateError) -> None:
    server.stats[f"rejected_{exc.reason}"] += 1
    server._m_updates.inc(outcome="rejected")
    server.log.warning(
        "Sedna-protocol update rejected", peer=session.client_id, reason=exc.reason, error=str(exc)
    )
    rnd = server._round
    if rnd is not None and session.client_id in rnd.pending:
        rnd.pending.discard(session.client_id)
        rnd.rejected[session.client_id] = exc.reason
        server._notify()
    else:  # sent unasked: the next round that asks this client counts the refusal
        session.drop_waiting()
        session.refused = exc.reason
    await session.send_json(
        {"type": "rejected", "data": {"reason": exc.reason, "message": str(exc)}}
    )


def take_waiting_updates(server: AggregationServer, rnd: Round) -> None:
    """At round start: Sedna clients asked this round may have sent their update already
    (also an update a failed attempt of this round had accepted: they cannot resend)."""
    for cid in sorted(rnd.asked):
        session = server._sessions.get(cid)
        if session is None or session.kind != "sedna":
            continue
        if session.waiting_update is not None:
            source, session.waiting_update = session.waiting_update, None
            rnd.updates[cid] = source
            rnd.metrics[cid] = (source.num_samples, {})
            rnd.pending.discard(cid)
        elif session.refused is not None:  # it will not send another: close without it
            rnd.rejected[cid] = session.refused
            rnd.pending.discard(cid)
        session.refused = None


def keep_for_retry(server: AggregationServer, rnd: Round) -> None:
    """A round attempt failed: Sedna clients cannot resend, so their accepted updates wait
    for the next attempt (the global model they were trained from has not changed)."""
    for cid in list(rnd.updates):
        session = server._sessions.get(cid)
        if session is not None and session.kind == "sedna" and session.waiting_update is None:
            session.waiting_update = rnd.updates.pop(cid)
            rnd.metrics.pop(cid, None)


def _recv_weight(server: AggregationServer, number: int, total: int, last: str) -> str:
    weights = server._global or []
    return json.dumps(
        {
            "type": "recv_weight",
            "client": last,
            "job_name": server.config.job_name,
            "round_number": number,
            "data": {
                "total_sample": total,
                "round_number": number,
                "weights": [w.tolist() for w in weights],
                "exit_flag": "ok" if number >= server.config.exit_round else "continue",
            },
        }
    )


def broadcast_round(server: AggregationServer, number: int, record: dict[str, Any]) -> None:
    """After a round: every Sedna client gets the new global model (``recv_weight``)."""
    targets = [s for s in server._sessions.values() if s.kind == "sedna"]
    if not targets:
        return
    last = record["clients"][-1] if record["clients"] else ""
    text = _recv_weight(server, number, record["num_samples"], last)
    for session in targets:
        server._spawn(session.send_text(text))


async def send_stop(server: AggregationServer, session: Session, result: FederatedResult) -> None:
    if result.status == "completed":
        if session.waiting_update is not None or server._completed == 0:
            session.drop_waiting()
        await session.send_text(_recv_weight(server, result.rounds, 0, ""))
    else:
        await session.close(CLOSE_FAILED, "job failed")


def info(server: AggregationServer, request: web.Request) -> dict[str, Any]:
    """Sedna's ``GET /{aggregation}``: the connected clients."""
    return {"clients": [c for c, s in server._sessions.items()]}
