"""Client connections of the aggregation server: websocket routes, admission (join frame,
tokens), sessions registered and replaced, the receive loop, joining and leaving a round."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from sedna_core.errors import ProtocolError
from sedna_core.jobs.federated import _sedna_compat as sedna
from sedna_core.jobs.federated._protocol import (
    CLOSE_PROTOCOL,
    CLOSE_REPLACED,
    CLOSE_UNAUTHORIZED,
    MAX_PRE_AUTH_DEPTH,
    json_depth,
    parse_control,
    specs_json,
)
from sedna_core.jobs.federated._session import Session
from sedna_core.service import check_bearer, prepare_websocket, public

__all__ = ["ServerConnections"]

_CLIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}$")
#: control-frame slack above the weight chunk size for one websocket message
_FRAME_SLACK = 1 << 20
#: seconds a new connection has to send its join frame
_JOIN_TIMEOUT = 60.0


class _AdmissionWebSocket(web.WebSocketResponse):
    """A websocket whose frame limit is small until its client is admitted.

    Before admission the reader refuses any frame above ``pre_auth_bytes`` from its length
    header, before a byte of it is buffered, and the close that follows is 4400 with the
    limit as its reason (aiohttp's own would be 1009 without one). :meth:`raise_frame_limit`
    lifts the limit to the protocol's once the client is admitted.
    """

    def __init__(self, *, pre_auth_bytes: int, protocol_limit: int, **kwargs: Any) -> None:
        # aiohttp refuses a frame whose length is >= max_msg_size: +1 admits exactly the limit.
        # No permessage-deflate: a new reader could not take over the old one's compression
        # window, weights do not compress, and no decompression bomb is then possible.
        super().__init__(max_msg_size=pre_auth_bytes + 1, compress=False, **kwargs)
        self.pre_auth_bytes = pre_auth_bytes
        self.protocol_limit = protocol_limit
        self.admitted = False

    async def close(
        self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True
    ) -> bool:
        if not self.admitted and code == WSCloseCode.MESSAGE_TOO_BIG:
            code = CLOSE_PROTOCOL
            message = f"frame over {self.pre_auth_bytes} bytes before authentication".encode()
        return await super().close(code=code, message=message, drain=drain)

    def raise_frame_limit(self, request: web.Request) -> bool:
        """Replace the frame reader by one with the protocol's limit; False where aiohttp
        cannot.

        aiohttp fixes the limit when the reader is made, so the admitted connection gets a new
        reader on the same queue. It happens between the join and the server's answer, when
        the protocol has the client waiting, so no frame is half-read by the old reader.
        """
        self.admitted = True
        try:
            from aiohttp._websocket.reader import WebSocketReader

            protocol = request.protocol
            old = self._parser
            if old is None or getattr(protocol, "_payload_parser", None) is not old:
                return False
            new = WebSocketReader(
                self._reader,
                self.protocol_limit,
                compress=bool(self._compress),
                decode_text=self._decode_text,
            )
        except (ImportError, AttributeError, TypeError):  # another aiohttp: keep the old reader
            return False
        protocol._payload_parser = new
        self._parser = new
        return True


def _frame_limit_swappable() -> bool:
    """Whether this aiohttp lets :meth:`_AdmissionWebSocket.raise_frame_limit` work."""
    try:
        from aiohttp._websocket.reader import WebSocketReader  # noqa: F401
    except ImportError:
        return False
    probe = web.WebSocketResponse()
    return all(hasattr(probe, a) for a in ("_parser", "_reader", "_compress", "_decode_text"))


_SWAPPABLE = _frame_limit_swappable()


def _token_bytes(token: str) -> bytes:
    # Any string a peer can send (non-ASCII, lone surrogates) compares as bytes, never raises
    return token.encode("utf-8", "surrogatepass")


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
        pre_auth = self.config.pre_auth_bytes
        if _SWAPPABLE:
            ws = await prepare_websocket(
                request,
                _AdmissionWebSocket,
                heartbeat=self.config.heartbeat,
                pre_auth_bytes=pre_auth,
                protocol_limit=max_msg,
            )
        else:  # the join frame's size is still checked before it is parsed
            ws = await prepare_websocket(
                request, heartbeat=self.config.heartbeat, max_msg_size=max(max_msg, pre_auth)
            )
        session: Session | None = None
        try:
            session = await self._admit(request, ws)
            if session is not None:
                await self._serve(session)
        finally:
            if session is not None:
                self._leave(session)
        return ws

    def _lift_frame_limit(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        """The client is admitted: from now on frames up to the protocol's limit."""
        if isinstance(ws, _AdmissionWebSocket) and not ws.raise_frame_limit(request):
            self.log.error("could not raise the websocket frame limit after admission")

    async def _protocol_close(self, ws: web.WebSocketResponse, reason: str) -> None:
        """Refuse a connection before admission: an error frame, then close 4400."""
        self.stats["refused_protocol"] += 1
        self.log.warning("connection refused before admission", reason=reason)
        with contextlib.suppress(Exception):
            await ws.send_str(_error("protocol", reason))
            await ws.close(code=CLOSE_PROTOCOL, message=reason.encode()[:120])

    async def _admit(self, request: web.Request, ws: web.WebSocketResponse) -> Session | None:
        try:
            first = await asyncio.wait_for(ws.receive(), timeout=_JOIN_TIMEOUT)
        except TimeoutError:
            await ws.close(code=CLOSE_PROTOCOL, message=b"no join frame within 60 s")
            return None
        if first.type == WSMsgType.ERROR and ws.closed:  # over the pre-auth limit: closed 4400
            self.stats["refused_protocol"] += 1
            self.log.warning(
                "connection refused before admission: first frame over the size limit",
                limit=self.config.pre_auth_bytes,
            )
            return None
        if first.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if first.type != WSMsgType.TEXT:
            await self._protocol_close(ws, "the first frame must be a join (JSON text)")
            return None
        text = first.data
        limit = self.config.pre_auth_bytes
        if len(text) > limit:  # the reader already refuses these where aiohttp lets it
            await self._protocol_close(ws, f"frame over {limit} bytes before authentication")
            return None
        if json_depth(text) > MAX_PRE_AUTH_DEPTH:
            await self._protocol_close(
                ws, f"join frame nests deeper than {MAX_PRE_AUTH_DEPTH} levels"
            )
            return None
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, dict) and doc.get("type") == "subscribe" and "v" not in doc:
            return await sedna.admit(self, request, ws, doc)
        try:
            msg = parse_control(text)
            if msg["type"] != "join":
                raise ProtocolError(f"the first frame must be a join, got {msg['type']!r}")
            client_id = self._client_id(msg.get("client_id"))
            labels = _labels(msg.get("labels"))
        except ProtocolError as exc:
            await self._protocol_close(ws, str(exc))
            return None
        if not self._authorised(client_id, msg.get("token")):
            return await self._refuse(ws, client_id)
        if not await self._may_take(ws, client_id):
            return None
        self._lift_frame_limit(request, ws)
        session = Session(client_id, ws, "native")
        session.labels = labels
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
            **({"classes": self._classes} if self._classes is not None else {}),
            **({"transforms": self.transforms.announce()} if self.transforms else {}),
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
                return token is not None and secrets.compare_digest(
                    _token_bytes(token), _token_bytes(expected)
                )
            if self._job_token is None:
                return False
        if self._job_token is not None:
            return token is not None and secrets.compare_digest(
                _token_bytes(token), _token_bytes(self._job_token)
            )
        return True

    def _own_token(self, client_id: str) -> bool:
        """Whether ``client_id`` authenticates with a token of its own (not a shared one)."""
        return self._client_tokens is not None and client_id in self._client_tokens

    async def _may_take(self, ws: web.WebSocketResponse, client_id: str) -> bool:
        """May a new connection take ``client_id``? Refuses it (4409) when not.

        With a per-client token the holder is that client: its new connection replaces the
        old one (a reconnect). Anyone holding a shared job token (or nobody, on a server
        without tokens) could claim any id, so a live connection keeps its id; the id is free
        again once that connection has closed or failed its heartbeat.
        """
        old = self._sessions.get(client_id)
        if old is None or self._own_token(client_id):
            return True
        if not old.alive or old.ws.closed:
            return True
        self.stats["refused_duplicate_id"] += 1
        advice = (
            f"client id {client_id!r} is already connected; give every client its own id "
            "(WORKER_NAME), or per-client tokens (AGG_CLIENT_TOKENS) so that a client's new "
            "connection replaces its old one"
        )
        self.log.warning("connection refused: " + advice, peer=client_id)
        with contextlib.suppress(Exception):
            await ws.send_str(_error("client_id_in_use", advice))
            await ws.close(code=CLOSE_REPLACED, message=b"client id in use")
        return False

    async def _refuse(self, ws: web.WebSocketResponse, client_id: str) -> None:
        self.stats["refused"] += 1
        self.log.warning(
            "client refused: wrong or missing token; the client must send the job token or "
            "its own token from AGG_CLIENT_TOKENS (SEDNA_TOKEN on the client)",
            peer=client_id,
        )
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
            self.log.warning(
                "client reconnected: its old connection is closed (4409); if two processes "
                "share this id, give each its own (WORKER_NAME)",
                peer=session.client_id,
            )
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
        # a secure round's members are fixed by its key stages: a (re)joining client waits for
        # the next round instead of holding this one up until its deadline
        secure = rnd.task == "train" and self._secure_round is not None
        if (rejoined or newcomer) and not secure:
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


#: most labels one client may announce (a classifier's distinct labels), and their longest
#: spelling: a join frame stays far below the pre-authentication frame limit
_MAX_LABELS = 1000
_MAX_LABEL_CHARS = 32


def _labels(value: Any) -> list[Any] | None:
    """The ``labels`` of a join frame: absent, or a list of distinct integers or short strings."""
    if value is None:
        return None
    ok = isinstance(value, list) and len(value) <= _MAX_LABELS
    if ok and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return value
    if ok and all(isinstance(v, str) and len(v) <= _MAX_LABEL_CHARS for v in value):
        return value
    raise ProtocolError(
        f"labels must be a list of at most {_MAX_LABELS} integers or strings of at most "
        f"{_MAX_LABEL_CHARS} characters; declare classes=[...] on the clients instead"
    )


def _error(code: str, message: str) -> str:
    from sedna_core.jobs.federated._protocol import control

    return control("error", code=code, message=message)
