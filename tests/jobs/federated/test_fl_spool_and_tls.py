"""Update spooling (the chunk checks), robust aggregation over spools, and wss:// with TLS."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna_core.algorithms.aggregation import InvalidUpdateError, specs_of
from sedna_core.jobs.federated import AggregationServer
from sedna_core.jobs.federated._spool import UpdateReceiver
from sedna_core.wire import encode_chunks

MODEL = [
    np.arange(20, dtype=np.float32).reshape(4, 5),
    np.zeros(0, np.float32),
    np.ones(3, np.float64),
]


def _receiver(tmp_path: Path) -> UpdateReceiver:
    return UpdateReceiver(tmp_path / "u.bin", specs_of(MODEL), 7)


def test_receiver_spools_and_reads_back(tmp_path: Path) -> None:
    rx = _receiver(tmp_path)
    frames = list(encode_chunks(MODEL, chunk_bytes=16))
    assert len(frames) > 5
    assert [rx.feed(f) for f in frames][-1] is True
    source = rx.finish()
    for got, want in zip(source.arrays(), MODEL, strict=True):
        np.testing.assert_array_equal(got, want)
    out = np.empty(4, np.float32)
    assert source.read(0, 3, 7, out) is out and out.tolist() == [3, 4, 5, 6]
    source.discard()
    assert not (tmp_path / "u.bin").exists()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda fs: fs[1:], "malformed"),  # a missing first frame: out of order
        (lambda fs: [fs[0], fs[0], *fs[1:]], "malformed"),  # a repeated frame
        (lambda fs: [fs[0][:-3]], "malformed"),  # truncated
        (lambda fs: list(encode_chunks([MODEL[0]], chunk_bytes=16)), "count"),
        (lambda fs: list(encode_chunks([MODEL[0].T.copy(), *MODEL[1:]], chunk_bytes=16)), "shape"),
        (
            lambda fs: list(
                encode_chunks([MODEL[0].astype(np.complex64), *MODEL[1:]], chunk_bytes=16)
            ),
            "dtype",
        ),  # complex to a real model would drop a part: refused
        (
            lambda fs: list(
                encode_chunks([MODEL[0].astype(np.float16), *MODEL[1:]], chunk_bytes=16)
            ),
            None,
        ),  # a compatible dtype is converted
        (
            lambda fs: list(
                encode_chunks({"a": MODEL[0], "b": MODEL[1], "c": MODEL[2]}, chunk_bytes=16)
            ),
            None,
        ),  # names are fine when unknown
    ],
)
def test_receiver_checks_every_frame(tmp_path: Path, mutate: Any, reason: str | None) -> None:
    rx = _receiver(tmp_path)
    frames = mutate(list(encode_chunks(MODEL, chunk_bytes=16)))
    if reason is None:
        assert [rx.feed(f) for f in frames][-1]
        return
    with pytest.raises(InvalidUpdateError) as err:
        for f in frames:
            rx.feed(f)
    assert err.value.reason == reason
    rx.discard()
    assert not (tmp_path / "u.bin").exists()


def test_receiver_rejects_non_finite_values(tmp_path: Path) -> None:
    bad = [MODEL[0].copy(), MODEL[1], MODEL[2].copy()]
    bad[2][1] = np.inf
    rx = _receiver(tmp_path)
    with pytest.raises(InvalidUpdateError, match="NaN or infinite") as err:
        for f in encode_chunks(bad, chunk_bytes=16):
            rx.feed(f)
    assert err.value.reason == "nonfinite"


async def test_robust_aggregation_over_spools(client_factory: Any, bounded: Any) -> None:
    init = [np.zeros((4, 3), np.float32), np.zeros(3, np.float32)]
    server = AggregationServer(
        "FedMedian", exit_round=1, participants_count=3, port=0, initial_weights=init
    )
    await server.astart()
    try:
        clients = [client_factory(server.ws_url, k) for k in (1, 2, 90)]  # 90: an outlier
        await bounded(asyncio.gather(*(c.atrain([0]) for c in clients)))
        result = await bounded(server.wait())
    finally:
        await server.astop()
    np.testing.assert_array_equal(result.weights[0], np.full((4, 3), 1.0, np.float32))


async def test_wss_with_tls(client_factory: Any, bounded: Any, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = (tmp_path / n for n in ("cert.pem", "key.pem", "ca.pem"))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    server = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=1,
        port=0,
        tls_cert=str(cert_file),
        tls_key=str(key_file),
        initial_weights=[np.zeros((4, 3), np.float32), np.zeros(3, np.float32)],
    )
    await server.astart()
    try:
        assert server.ws_url.startswith("wss://")
        client = client_factory(server.ws_url, 1)
        client.config = type(client.config).from_env({}, worker_name="c1", tls_ca=str(ca_file))
        await bounded(client.atrain([0]))
        assert (await bounded(server.wait())).status == "completed"
    finally:
        await server.astop()
