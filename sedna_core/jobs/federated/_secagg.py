"""Secure aggregation's protocol stages (SecAgg+), server and client side.

A job whose transform chain ends with a :class:`~sedna_core.algorithms.secure.
BaseSecureAggregation` runs four stages in each training round (the piece supplies the
cryptography; this module moves the messages and decides who is still in the round):

======  ===============================  ===============================================
stage   client -> server                 server -> client (frames the server builds)
======  ===============================  ===============================================
keys    ``secagg_keys {keys}``           ``secagg_peers {index, threshold, peers}``
shares  ``secagg_shares {shares,         ``secagg_inbox {shares}``: the ciphertexts
        commitment}``: one ciphertext    addressed to that one client, re-encoded by the
        per neighbour                    server from the checked bytes
upload  ``update`` (masked, chunked)     ``accepted``
unmask  ``secagg_reveal {shares}``       ``secagg_unmask {survivors, dropped}``
======  ===============================  ===============================================

Every frame carries ``round`` and ``attempt``. The server never forwards a client's frame: it
decodes each field (base64 of bounded length, addressed only to the sender's neighbours) and
writes new frames. A client that sends malformed keys or shares is dropped from the round
(``rejected``, reason ``secagg``) and the round goes on without it; a round left with fewer
clients than the reconstruction threshold, at any stage, fails cleanly: the previous global
model is kept and the reason is logged and named in the job's message if the retries run out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sedna_core.algorithms.secure import (
    BaseSecureAggregation,
    PeerKeys,
    SecureClientRound,
    SecurePlan,
    UnmaskInput,
)
from sedna_core.errors import InvalidUpdateError, JobError
from sedna_core.jobs.federated._protocol import control
from sedna_core.jobs.federated._rounds import Round
from sedna_core.jobs.federated._session import Session

__all__ = ["SECAGG_FRAMES", "SecureRoundState", "SecureStages", "client_reveal", "client_setup"]

#: the stage frames clients send
SECAGG_FRAMES = frozenset({"secagg_keys", "secagg_shares", "secagg_reveal"})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(value: Any, what: str, max_bytes: int, exact: int | None = None) -> bytes:
    """Bytes of a base64 field from a peer, bounded before decoding; ``ValueError`` otherwise."""
    if not isinstance(value, str) or len(value) > 4 * ((max_bytes + 2) // 3):
        raise ValueError(f"{what} must be base64 of at most {max_bytes} bytes")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
    if exact is not None and len(data) != exact:
        raise ValueError(f"{what} must be {exact} bytes, got {len(data)}")
    return data


def _blob_map(value: Any, what: str, allowed: set[str], max_bytes: int) -> dict[str, bytes]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object of client id -> base64")
    unknown = set(value) - allowed
    if unknown:
        raise ValueError(f"{what} names clients it may not address: {sorted(unknown)[:5]}")
    return {k: unb64(v, f"{what}[{k!r}]", max_bytes) for k, v in value.items()}


@dataclass
class SecureRoundState:
    """The server's record of one secure round (one attempt)."""

    number: int
    attempt: int
    piece: BaseSecureAggregation
    stage: str = "keys"
    #: who must still answer the current stage
    expected: set[str] = field(default_factory=set)
    keys: dict[str, dict[str, bytes]] = field(default_factory=dict)
    #: every public key announced this round (each must be a client's own)
    announced: set[bytes] = field(default_factory=set)
    plan: SecurePlan | None = None
    commitments: dict[str, bytes] = field(default_factory=dict)
    shares: dict[str, dict[str, bytes]] = field(default_factory=dict)
    shared: list[str] = field(default_factory=list)
    reveals: dict[str, dict[str, bytes]] = field(default_factory=dict)
    asked_reveal: dict[str, set[str]] = field(default_factory=dict)
    #: the unmasked mean delta, once computed
    delta: list[np.ndarray] | None = None


class SecureStages:
    """The secure-aggregation stages of the aggregation server (``_server.py`` holds the
    state; the round engine calls :meth:`_secure_setup` and :meth:`_secure_unmask`)."""

    _secure_round: SecureRoundState | None
    _secure_failure: str
    #: round number -> clients proven at fault in an attempt, left out of its retries
    _secure_left_out: dict[int, set[str]]

    async def _secure_setup(self, rnd: Round, piece: BaseSecureAggregation) -> bool:
        """The keys and shares stages; False (reason logged) when the round cannot go on."""
        state = SecureRoundState(rnd.number, rnd.attempt, piece)
        self._secure_round = state
        for cid in sorted(rnd.pending & self._secure_left_out.get(rnd.number, set())):
            session = self._sessions.get(cid)
            reason = InvalidUpdateError(
                "secagg",
                "left out of this round's retry: the shares of its self-mask seed disagreed "
                "with its commitment in the failed attempt",
            )
            if session is not None:
                await self._reject(session, rnd.number, reason)
            rnd.pending.discard(cid)
        state.expected = set(rnd.pending)
        await self._wait_for(lambda: not (state.expected & rnd.pending), rnd.deadline)
        keyed = sorted(c for c in state.keys if c in rnd.pending)
        await self._drop_silent(rnd, state, keyed, "keys")
        plan = piece.plan(keyed, [self.config.seed & 0xFFFFFFFF, rnd.number, rnd.attempt])
        if plan.error:
            return self._secure_fail(rnd, plan.error)
        state.plan = plan
        state.stage = "shares"
        state.expected = set(keyed)
        for cid in keyed:
            peers = {
                v: {"index": plan.index[v], "keys": {k: b64(b) for k, b in state.keys[v].items()}}
                for v in plan.neighbours[cid]
            }
            self._spawn(
                self._secure_send(
                    cid,
                    "secagg_peers",
                    round=rnd.number,
                    attempt=rnd.attempt,
                    index=plan.index[cid],
                    threshold=plan.threshold,
                    peers=peers,
                )
            )
        await self._wait_for(lambda: not (state.expected & rnd.pending), rnd.deadline)
        shared = sorted(c for c in state.shares if c in rnd.pending)
        await self._drop_silent(rnd, state, shared, "shares")
        if len(shared) < plan.threshold:
            return self._secure_fail(
                rnd,
                f"only {len(shared)} client(s) shared their keys, fewer than the reconstruction "
                f"threshold {plan.threshold}",
            )
        state.shared = shared
        members = set(shared)
        state.stage = "upload"
        for cid in shared:
            # built here from the checked bytes, one frame per recipient: no client frame is
            # ever forwarded
            inbox = {
                v: b64(state.shares[v][cid])
                for v in plan.neighbours[cid]
                if v in members and cid in state.shares[v]
            }
            self._spawn(
                self._secure_send(
                    cid, "secagg_inbox", round=rnd.number, attempt=rnd.attempt, shares=inbox
                )
            )
        return True

    async def _drop_silent(
        self, rnd: Round, state: SecureRoundState, kept: list[str], stage: str
    ) -> None:
        """Clients still asked that did not answer ``stage`` leave the round."""
        for cid in sorted(rnd.pending - set(kept)):
            rnd.pending.discard(cid)
            rnd.failed.add(cid)
            self.stats[f"secagg_silent_{stage}"] += 1
            self.log.warning(
                f"client sent no secure-aggregation {stage} in time; it leaves the round",
                peer=cid,
                round=rnd.number,
            )
            session = self._sessions.get(cid)
            if session is not None:
                self._spawn(
                    session.send(
                        "rejected",
                        round=rnd.number,
                        reason="secagg",
                        message=f"no secure-aggregation {stage} before the deadline",
                    )
                )

    async def _secure_send(self, cid: str, kind: str, **fields: Any) -> None:
        session = self._sessions.get(cid)
        if session is None or not await session.send(kind, **fields):
            rnd = self._round
            if rnd is not None and cid in rnd.pending:
                rnd.pending.discard(cid)
                rnd.failed.add(cid)
                self._notify()

    def _secure_fail(self, rnd: Round, reason: str) -> bool:
        self._secure_failure = reason
        self.stats["secagg_failed_rounds"] += 1
        self.log.warning(
            "secure aggregation round failed; the previous global model is kept",
            round=rnd.number,
            attempt=rnd.attempt,
            reason=reason,
        )
        self._secure_round = None
        return False

    async def _on_secagg(self, session: Session, msg: dict[str, Any]) -> None:
        state = self._secure_round
        cid = session.client_id
        kind = msg["type"]
        number, attempt = msg.get("round"), msg.get("attempt")
        if state is None or (number, attempt) != (state.number, state.attempt):
            self.log.info("secure-aggregation frame for another round ignored", peer=cid)
            return
        if cid not in state.expected:
            self.log.info("unexpected secure-aggregation frame ignored", peer=cid, kind=kind)
            return
        piece = state.piece
        try:
            if kind == "secagg_keys" and state.stage == "keys":
                keys = msg.get("keys")
                if not isinstance(keys, dict) or set(keys) != set(piece.key_names):
                    raise ValueError(f"'keys' must name exactly {list(piece.key_names)}")
                parsed = {
                    k: unb64(keys[k], f"key {k!r}", piece.key_bytes, exact=piece.key_bytes)
                    for k in piece.key_names
                }
                piece.check_public_keys(parsed)
                # a copied key would make two clients' masks with a common neighbour equal
                # (cancelling, with opposite signs)
                if len(set(parsed.values())) != len(parsed) or state.announced & set(
                    parsed.values()
                ):
                    raise ValueError(
                        "a public key was already announced in this round; each client must "
                        "generate its own keys"
                    )
                state.announced |= set(parsed.values())
                state.keys[cid] = parsed
            elif kind == "secagg_shares" and state.stage == "shares":
                assert state.plan is not None
                neighbours = set(state.plan.neighbours.get(cid, ()))
                shares = _blob_map(
                    msg.get("shares"), "shares", neighbours, piece.max_ciphertext_bytes
                )
                if set(shares) != neighbours:
                    missing = sorted(neighbours - set(shares))[:5]
                    raise ValueError(f"'shares' lacks the ciphertexts for {missing}")
                state.commitments[cid] = unb64(msg.get("commitment"), "commitment", 64)
                state.shares[cid] = shares
            elif kind == "secagg_reveal" and state.stage == "unmask":
                allowed = state.asked_reveal.get(cid, set())
                state.reveals[cid] = _blob_map(
                    msg.get("shares"), "shares", allowed, piece.max_share_bytes
                )
            else:
                return  # a stage that is over: ignored
        except ValueError as exc:
            state.expected.discard(cid)
            self.stats["secagg_malformed"] += 1
            self._notify()
            rnd = self._round
            if state.stage == "unmask" or rnd is None:
                # a bad reveal counts as a missing one; the others may still suffice
                self.log.warning(
                    "malformed secure-aggregation reveal ignored", peer=cid, error=str(exc)
                )
                return
            await self._reject(
                session,
                state.number,
                InvalidUpdateError("secagg", f"malformed {kind} frame: {exc}"),
            )
            return
        state.expected.discard(cid)
        self._notify()

    def _secure_accepts(self, cid: str) -> bool:
        """Whether ``cid`` may upload its masked update now (after the shares were relayed)."""
        state = self._secure_round
        return state is not None and state.stage == "upload" and cid in state.shared

    async def _secure_unmask(self, rnd: Round) -> bool:
        """The unmask stage and the unmasking itself; the mean delta lands in the state."""
        state = self._secure_round
        assert state is not None and state.plan is not None
        plan = state.plan
        members = set(state.shared)
        survivors = sorted(c for c in rnd.updates if c in members)
        if len(survivors) < plan.threshold:
            return self._secure_fail(
                rnd,
                f"only {len(survivors)} masked update(s) arrived, fewer than the "
                f"reconstruction threshold {plan.threshold}",
            )
        alive = set(survivors)
        state.stage = "unmask"
        state.expected = set()
        for cid in survivors:
            near = set(plan.neighbours[cid]) & members
            ok = sorted((near & alive) | {cid})
            gone = sorted(near - alive)
            state.asked_reveal[cid] = set(ok) | set(gone)
            session = self._sessions.get(cid)
            if session is None:
                continue
            state.expected.add(cid)
            self._spawn(
                self._secure_send(
                    cid,
                    "secagg_unmask",
                    round=rnd.number,
                    attempt=rnd.attempt,
                    survivors=ok,
                    dropped=gone,
                )
            )
        # The upload may have used the round's deadline up (a client that never answered):
        # revealing gets at least a quarter of a round's time.
        now = self.clock.monotonic()
        deadline = max(rnd.deadline, now + self.config.round_deadline / 4)
        await self._wait_for(lambda: not (state.expected & set(self._sessions)), deadline)
        job = UnmaskInput(
            rnd.number,
            rnd.attempt,
            self._specs or [],
            plan,
            state.keys,
            state.commitments,
            state.shared,
            {c: rnd.updates[c] for c in survivors},
            state.reveals,
        )
        try:
            state.delta = await asyncio.to_thread(state.piece.unmask, job)
        except ValueError as exc:
            culprits = set(getattr(exc, "culprits", ()))
            if culprits:
                left = self._secure_left_out.get(rnd.number, set()) | culprits
                self._secure_left_out = {rnd.number: left}  # (only this round's)
            return self._secure_fail(rnd, str(exc))
        return True

    def _aggregate_secure(self, sources: list[Any], number: int) -> list[np.ndarray]:
        """The new global model from the unmasked mean delta (the aggregator's round has
        begun): the mean goes in as one update, so FedAvg returns it as is and a server
        optimiser (FedAdam...) steps on it; the chain's after-aggregation pieces (central
        noise) then act on the aggregate's delta. Memory: a few models, whatever the clients."""
        from sedna_core.algorithms.aggregation import ArrayUpdate
        from sedna_core.algorithms.transform import BaseUpdateTransform, TransformContext

        state = self._secure_round
        assert state is not None and state.delta is not None and self._global is not None
        delta, state.delta = state.delta, None
        base = self._global
        merged = []
        for d, g in zip(delta, base, strict=True):
            if d.dtype == g.dtype:
                merged.append(np.add(g, d, out=d))
            else:
                merged.append(np.add(g, d, dtype=g.dtype, casting="unsafe"))
        del delta
        self.aggregator.add_update(ArrayUpdate(merged, max(1, sum(s.num_samples for s in sources))))
        new = self.aggregator.finish()
        del merged
        chain = self.transforms
        ctx = TransformContext(
            number,
            self._specs or [],
            num_clients=len(sources),
            total_clients=max(len(self._sessions), len(sources)),
        )
        acting = [
            t
            for t in chain.transforms
            if type(t).after_aggregation is not BaseUpdateTransform.after_aggregation
        ]
        if acting:
            change = [np.subtract(w, g, dtype=g.dtype) for w, g in zip(new, base, strict=True)]
            change = chain.after_aggregation(change, ctx)
            new = [np.add(g, d, dtype=g.dtype) for g, d in zip(base, change, strict=True)]
        self._transform_numbers = chain.end_round(ctx)
        self._secure_round = None
        return new  # type: ignore[no-any-return]


# -- client side ---------------------------------------------------------------------------
async def client_setup(
    job: Any, ws: Any, inbox: Any, msg: Mapping[str, Any], piece: BaseSecureAggregation
) -> SecureClientRound | None:
    """The keys and shares stages of one round on a client; None when the server dropped this
    client from the round (it then waits for the next round)."""
    number, attempt = int(msg.get("round", 0)), msg.get("attempt", 0)
    secret = piece.client_round(number, attempt, job.client_id)
    await ws.send_str(
        control(
            "secagg_keys",
            round=number,
            attempt=attempt,
            keys={k: b64(v) for k, v in secret.public_keys().items()},
        )
    )
    peers_msg = await _expect(job, inbox, "secagg_peers", number, attempt)
    if peers_msg is None:
        return None
    try:
        raw = peers_msg.get("peers")
        if not isinstance(raw, dict):
            raise ValueError("'peers' must be an object")
        peers = {}
        for cid, item in raw.items():
            if not isinstance(item, dict) or not isinstance(item.get("index"), int):
                raise ValueError(f"peer {cid!r} is malformed")
            keys = item.get("keys")
            if not isinstance(keys, dict):
                raise ValueError(f"peer {cid!r} has no keys")
            peers[cid] = PeerKeys(
                item["index"],
                {k: unb64(keys.get(k), "a public key", 32, exact=32) for k in piece.key_names},
            )
        ciphertexts, commitment = secret.share_keys(
            int(peers_msg["index"]), int(peers_msg["threshold"]), peers
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise JobError(f"the server's secure-aggregation peers frame is unusable: {exc}") from exc
    await ws.send_str(
        control(
            "secagg_shares",
            round=number,
            attempt=attempt,
            shares={k: b64(v) for k, v in ciphertexts.items()},
            commitment=b64(commitment),
        )
    )
    inbox_msg = await _expect(job, inbox, "secagg_inbox", number, attempt)
    if inbox_msg is None:
        return None
    received = inbox_msg.get("shares")
    if not isinstance(received, dict):
        raise JobError("the server's secure-aggregation inbox frame is malformed")
    blobs = {}
    for cid, value in received.items():
        try:
            blobs[cid] = unb64(value, "a share", piece.max_ciphertext_bytes)
        except ValueError:
            blobs[cid] = b""  # undecryptable: skipped at unmasking, still masked with
    bad = secret.receive_shares(blobs)
    if bad:
        job.log.warning(
            "shares from some neighbours did not decrypt; they are skipped", peers=bad[:10]
        )
    return secret


async def _expect(
    job: Any, inbox: Any, kind: str, number: int, attempt: Any
) -> dict[str, Any] | None:
    """The next control frame, which should be ``kind`` of this round; anything else for a
    new round or the job's end is put back for the main loop (None: this round is over for
    this client)."""
    while True:
        msg = await job._control(inbox)
        if msg["type"] == kind and (msg.get("round"), msg.get("attempt")) == (number, attempt):
            return msg  # type: ignore[no-any-return]
        if msg["type"] in ("rejected", "late") and msg.get("round") == number:
            job.log.warning(
                "the server dropped this client from the secure round",
                round=number,
                reason=msg.get("reason"),
                message=msg.get("message"),
            )
            return None
        if msg["type"] in ("round", "stop", "error"):
            job._held.append(msg)
            return None
        # results of earlier rounds, acknowledgements: nothing to do now


async def client_reveal(job: Any, ws: Any, msg: Mapping[str, Any]) -> None:
    """Answer the server's unmask request with this client's shares."""
    number, attempt = msg.get("round"), msg.get("attempt")
    secret = job._secure_rounds.pop((number, attempt), None)
    if secret is None:
        job.log.info("unmask request for a round this client holds no secrets of", round=number)
        return
    survivors, dropped = msg.get("survivors"), msg.get("dropped")
    if not (isinstance(survivors, list) and isinstance(dropped, list)):
        job.log.warning("malformed unmask request ignored", round=number)
        return
    try:
        shares = secret.reveal([str(s) for s in survivors], [str(d) for d in dropped])
    except ValueError as exc:
        job.log.warning("unmask request refused", round=number, reason=str(exc))
        return
    await ws.send_str(
        control(
            "secagg_reveal",
            round=number,
            attempt=attempt,
            shares={k: b64(v) for k, v in shares.items()},
        )
    )
