"""SecAgg+ under attack: a hand-driven client (raw websocket frames, the real client-side
cryptography where it plays along) breaks one stage of a secure round on a real server on
127.0.0.1; the honest clients' round must complete (or fail cleanly where the attack can only be
detected in the sum) and the server must keep serving."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import numpy as np
import pytest

from sedna_core.algorithms.secure import PeerKeys
from sedna_core.jobs.federated import AggregationServer

pytest.importorskip("sedna_plugin_transforms")
pytest.importorskip("cryptography")

from sedna_plugin_transforms.secagg import SecAggPlus, _ClientRound

from tests.jobs.federated.test_fl_secagg import SHAPES, assert_fedavg, client, samples, secagg


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seeded_entropy(seed: int) -> Any:
    rng = np.random.default_rng(seed)
    return lambda n: rng.bytes(n)


class Evil:
    """A raw client that runs the secure stages by hand (``RawClient`` underneath)."""

    def __init__(self, raw: Any, cid: str, seed: int) -> None:
        self.raw, self.cid = raw, cid
        self.secret = _ClientRound(
            SecAggPlus(num_shares=4, reconstruction_threshold=2, seed=7),
            0,
            0,
            cid,
            entropy=seeded_entropy(seed),
        )
        self.head: dict[str, Any] = {}

    async def start(self) -> dict[str, Any]:
        msg, _ = await self.raw.next_round()
        self.msg = msg
        self.head = {"v": 1, "round": msg["round"], "attempt": msg["attempt"]}
        self.secret.round_number, self.secret.attempt = msg["round"], msg["attempt"]
        return msg

    async def send(self, kind: str, **fields: Any) -> None:
        await self.raw.ws.send_str(json.dumps({**self.head, "type": kind, **fields}))

    async def keys(self, keys: dict[str, bytes] | None = None) -> None:
        keys = keys or self.secret.public_keys()
        await self.send("secagg_keys", keys={k: b64(v) for k, v in keys.items()})

    async def shares(self) -> None:
        peers_msg = await self.raw.until("secagg_peers")
        peers = {
            c: PeerKeys(p["index"], {k: base64.b64decode(v) for k, v in p["keys"].items()})
            for c, p in peers_msg["peers"].items()
        }
        ciphertexts, commitment = self.secret.share_keys(
            peers_msg["index"], peers_msg["threshold"], peers
        )
        await self.send(
            "secagg_shares",
            shares={k: b64(v) for k, v in ciphertexts.items()},
            commitment=b64(commitment),
        )
        inbox = await self.raw.until("secagg_inbox")
        self.secret.receive_shares({k: base64.b64decode(v) for k, v in inbox["shares"].items()})

    async def upload(self, num_samples: int = 10, wire: list[np.ndarray] | None = None) -> None:
        delta = [np.zeros(s, np.float32) for s in SHAPES]
        wire = wire if wire is not None else self.secret.mask(delta, num_samples)
        await self.raw.send_update(self.msg, wire, num_samples=num_samples)

    async def leave(self) -> None:
        await self.raw.close()


async def run_attack(
    bounded: Any,
    raw_clients: Any,
    attack: Any,
    evils: tuple[str, ...] = ("evil",),
    **server_kw: Any,
) -> Any:
    """Three honest clients and the attackers; returns (result, server)."""
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=3 + len(evils),
        quorum=3,
        port=0,
        round_deadline=60,
        initial_weights=[np.zeros(s, np.float32) for s in SHAPES],
        transforms=secagg(num_shares=4, reconstruction_threshold=2),
        **server_kw,
    )
    await server.astart()
    try:
        bad = [
            Evil(await raw_clients(server.ws_url, cid), cid, seed=i) for i, cid in enumerate(evils)
        ]
        honest = [client(server.ws_url, k) for k in range(3)]
        jobs = asyncio.gather(
            *(c.atrain([0] * samples(k)) for k, c in enumerate(honest)),
            return_exceptions=True,  # (a failed job ends them with JobError)
        )
        for evil in bad:
            await bounded(evil.start())
        await bounded(attack(*bad))
        await bounded(jobs)
        result = await bounded(server.wait())
    finally:
        await server.astop()
    return result, server


@pytest.mark.parametrize("key", ["zero", "low_order"])
async def test_an_unusable_x25519_key_is_refused_and_the_neighbours_finish(
    bounded: Any, raw_clients: Any, key: str
) -> None:
    """All-zero (or another low-order point) public keys give a shared secret of zeros, which
    ``cryptography`` refuses: relayed to the neighbours it made each honest client's job fail.
    The server refuses such keys at the keys stage."""
    # a point of order 8 on Curve25519 (RFC 7748's list of low-order points)
    low = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
    bad = bytes(32) if key == "zero" else bytes.fromhex(low)

    async def attack(evil: Evil) -> None:
        await evil.keys({"enc": bad, "mask": bad})
        rejected = await evil.raw.until("rejected")
        assert rejected["reason"] == "secagg"
        assert "not a usable X25519 public key" in rejected["message"]

    result, _server = await run_attack(bounded, raw_clients, attack)
    assert result.status == "completed", result.message
    assert result.history[0]["rejected"] == {"evil": "secagg"}
    assert_fedavg(result.weights, [0, 1, 2], 1000.0)


async def test_a_key_announced_twice_in_a_round_is_refused(bounded: Any, raw_clients: Any) -> None:
    """Two clients announcing the same mask key would make their pairwise masks with a common
    neighbour equal (of opposite signs they cancel): the second announcement is refused."""

    async def attack(evil: Evil, twin: Evil) -> None:
        twin.secret = evil.secret
        await evil.keys()
        await twin.keys()  # the same keys as evil's
        rejected = await twin.raw.until("rejected")
        assert rejected["reason"] == "secagg"
        assert "already announced" in rejected["message"]
        await evil.shares()
        await evil.leave()  # before its masked upload: its mask key is rebuilt

    result, _server = await run_attack(bounded, raw_clients, attack, evils=("evil", "twin"))
    assert result.status == "completed", result.message
    assert result.history[0]["rejected"] == {"twin": "secagg"}
    assert_fedavg(result.weights, [0, 1, 2], 1000.0)


async def reveal(evil: Evil, shares: dict[str, bytes] | None = None) -> None:
    ask = await evil.raw.until("secagg_unmask")
    if shares is None:
        shares = evil.secret.reveal(ask["survivors"], ask["dropped"])
    await evil.send("secagg_reveal", shares={k: b64(v) for k, v in shares.items()})


async def plays_along(evil: Evil) -> None:
    """Every stage done right, with a zero update of zero weight (the sum is the others')."""
    await evil.keys()
    await evil.shares()
    await evil.upload(num_samples=1, wire=evil.secret.mask([np.zeros(s) for s in SHAPES], 0))
    await reveal(evil)


async def out_of_order(evil: Evil) -> None:
    # stage frames before their stage, a replay of an earlier round, a reveal before unmasking
    await evil.send("secagg_shares", shares={}, commitment="")
    await evil.send("secagg_reveal", shares={})
    stale = {"v": 1, "round": evil.head["round"] - 1, "attempt": 0, "type": "secagg_keys"}
    await evil.raw.ws.send_str(json.dumps({**stale, "keys": {"enc": "AA==", "mask": "AA=="}}))
    await plays_along(evil)


async def leaves_after(stage: str, evil: Evil) -> None:
    if stage != "round":
        await evil.keys()
    if stage in ("shares", "upload"):
        await evil.shares()
    if stage == "upload":
        await evil.upload(num_samples=1, wire=evil.secret.mask([np.zeros(s) for s in SHAPES], 0))
    await evil.leave()


async def bad_update(how: str, evil: Evil) -> None:
    await evil.keys()
    await evil.shares()
    wire = evil.secret.mask([np.zeros(s) for s in SHAPES], 0)
    if how == "float32":
        await evil.upload(wire=[w.astype(np.float32) for w in wire])
    elif how == "short":
        await evil.upload(wire=wire[:-1])
    elif how == "huge_num_samples":
        await evil.upload(num_samples=10**30, wire=wire)
    rejected = await evil.raw.until("rejected")
    assert rejected["type"] == "rejected" and rejected["message"], rejected


async def bad_reveal(how: str, evil: Evil) -> None:
    await evil.keys()
    await evil.shares()
    await evil.upload(num_samples=1, wire=evil.secret.mask([np.zeros(s) for s in SHAPES], 0))
    ask = await evil.raw.until("secagg_unmask")
    owners = ask["survivors"] + ask["dropped"]
    held = evil.secret.held
    if how == "both_secrets":
        # each owner's seed share AND mask-key share (the mask key under another name is not
        # possible: one share per owner, read by the server as the secret it asked for)
        shares = {o: held[o][1].to_bytes(66, "big") for o in owners if o in held}
    elif how == "garbage":
        shares = {o: bytes([7]) * 66 for o in owners}
    else:  # "strangers": shares of clients it was not asked about
        shares = {"nobody": bytes(66), **{o: held[o][0].to_bytes(66, "big") for o in owners}}
    await evil.send("secagg_reveal", shares={k: b64(v) for k, v in shares.items()})


SCRIPTS = {
    "plays_along": plays_along,
    "out_of_order": out_of_order,
    **{
        f"leaves_after_{s}": (lambda e, s=s: leaves_after(s, e))
        for s in ("round", "keys", "shares", "upload")
    },
    **{
        f"update_{h}": (lambda e, h=h: bad_update(h, e))
        for h in ("float32", "short", "huge_num_samples")
    },
    **{
        f"reveal_{h}": (lambda e, h=h: bad_reveal(h, e))
        for h in ("both_secrets", "garbage", "strangers")
    },
}


@pytest.mark.parametrize("script", sorted(SCRIPTS))
async def test_the_honest_clients_round_survives(
    bounded: Any, raw_clients: Any, script: str
) -> None:
    result, server = await run_attack(bounded, raw_clients, SCRIPTS[script])
    assert result.status == "completed", result.message
    assert_fedavg(result.weights, [0, 1, 2], 1000.0)
    assert server.stats["secagg_failed_rounds"] == 0


@pytest.mark.parametrize("what", ["random", "weight"])
async def test_a_sum_no_clipped_updates_can_make_is_refused(
    bounded: Any, raw_clients: Any, what: str
) -> None:
    """A client masks values outside the quantisation range (random words, or a weight far
    above 1 to own the mean): the unmasked sum is then out of the range honest clients' sum
    lies in, so the round fails cleanly instead of publishing a poisoned model."""

    async def attack(evil: Evil) -> None:
        await evil.keys()
        await evil.shares()
        secret = evil.secret
        if what == "random":
            rng = np.random.default_rng(3)
            quantised = [rng.integers(0, 1 << 32, size=np.prod(s), dtype=np.uint64) for s in SHAPES]
        else:  # a zero delta (the middle level) with a weight of 1000
            q = secret.owner.quantization_range
            quantised = [np.full(np.prod(s), q // 2, np.uint64) for s in SHAPES]
        quantised.append(np.array([1000 * secret.owner.quantization_range], np.uint64))
        await evil.upload(wire=mask_quantised(secret, quantised))
        await reveal(evil)

    result, server = await run_attack(bounded, raw_clients, attack, max_retries=0)
    assert result.status == "failed"
    assert "outside the range" in result.message
    assert all((w == 0).all() for w in result.weights)  # the previous model is kept
    assert server.stats["secagg_failed_rounds"] >= 1


def mask_quantised(secret: Any, quantised: list[np.ndarray]) -> list[np.ndarray]:
    """``secret.mask`` on already quantised values (what a hostile client can send)."""
    import sedna_plugin_transforms.secagg as impl

    original = impl.quantize, impl.quantize_weight
    parts = iter(quantised)
    impl.quantize = lambda *a, **k: next(parts)
    impl.quantize_weight = lambda *a, **k: next(parts)
    try:
        return secret.mask([np.zeros(s) for s in SHAPES], 1)  # type: ignore[no-any-return]
    finally:
        impl.quantize, impl.quantize_weight = original


async def test_a_client_whose_seed_fails_its_commitment_is_left_out_of_the_retry(
    bounded: Any, raw_clients: Any
) -> None:
    """A client commits to one seed and shares another: its self-mask cannot be removed, so
    the attempt fails; the retry leaves that client out (its fault is proven by t consistent
    shares that disagree with its commitment) and the honest clients' round completes."""

    async def attack(evil: Evil) -> None:
        await evil.keys()
        share_keys = evil.secret.share_keys

        def lying(*args: Any) -> tuple[dict[str, bytes], bytes]:
            ciphertexts, _commitment = share_keys(*args)
            return ciphertexts, bytes(32)

        evil.secret.share_keys = lying  # type: ignore[method-assign]
        await evil.shares()
        await evil.upload(num_samples=1, wire=evil.secret.mask([np.zeros(s) for s in SHAPES], 0))
        await reveal(evil)
        rejected = await evil.raw.until("rejected")  # in the retry
        assert rejected["reason"] == "secagg"
        assert "commitment" in rejected["message"]

    result, server = await run_attack(bounded, raw_clients, attack, max_retries=1)
    assert result.status == "completed", result.message
    assert server.stats["secagg_failed_rounds"] == 1
    assert_fedavg(result.weights, [0, 1, 2], 1000.0)


KEY_FRAMES: dict[str, Any] = {
    "not_an_object": ["AAAA"],
    "nested": {"enc": {"enc": {"enc": "AAAA"}}, "mask": [[["AAAA"]]]},
    "extra_name": {"enc": b64(bytes(range(32))), "mask": b64(bytes(range(32))), "x": ""},
    "not_base64": {"enc": "%%%%", "mask": "****"},
    "oversized": {"enc": "A" * 600_000, "mask": "A" * 600_000},
    "deep": json.loads("[" * 900 + "]" * 900),
}


@pytest.mark.parametrize("frame", sorted(KEY_FRAMES))
async def test_a_malformed_keys_frame_is_rejected(
    bounded: Any, raw_clients: Any, frame: str
) -> None:
    async def attack(evil: Evil) -> None:
        if frame == "deep":  # deeper than json.loads recurses: sent as raw text
            text = json.dumps({**evil.head, "type": "secagg_keys"})[:-1] + ', "keys": '
            await evil.raw.ws.send_str(text + "[" * 100_000 + "]" * 100_000 + "}")
        else:
            await evil.send("secagg_keys", keys=KEY_FRAMES[frame])
        rejected = await evil.raw.until("rejected")
        assert rejected["message"] and "\n" not in rejected["message"]
        # an unparsed frame names no round: the client stays in it (like a silent one, until
        # the deadline); leaving lets the others go on now
        await evil.leave()

    result, _server = await run_attack(bounded, raw_clients, attack)
    assert result.status == "completed", result.message
    assert_fedavg(result.weights, [0, 1, 2], 1000.0)
