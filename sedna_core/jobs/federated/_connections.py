"""Client connections of the aggregation server: websocket routes, admission (join frame,
tokens), sessions registered and replaced, the receive loop, joining and leaving a round."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from typing import Any

from aiohttp import WSMsgType, web

from sedna_core.errors import ProtocolError
from sedna_core.jobs.federated import _sedna_compat as sedna
from sedna_core.jobs.federated._protocol import (
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    parse_control,
    specs_json,
)
from sedna_core.jobs.federated._session import Session
from sedna_core.service import check_bearer, prepare_websocket, public

__all__ = ["ServerConnections"]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
#: control-frame slack above the weight chunk size for one websocket message
_FRAME_SLACK = 1 << 20


class ServerConnections:
    """The websocket side of the server: who may connect, and what joining or leaving does.

    Part of :class:`~sedna_core.jobs.federated.AggregationServer` (``_server.py``), which
    holds the state these methods use.
    """

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


def _error(code: str, message: str) -> str:
    from sedna_core.jobs.federated._protocol import control

    return control("error", code=code, message=message)
