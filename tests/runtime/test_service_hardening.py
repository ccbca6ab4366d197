"""The service base against hostile clients, on real loopback servers: slow crowds (header and
body tricklers), non-UTF-8 tokens on all three servers, hostile JSON, NaN in and out, JSON and
body caps, and a hypothesis fuzz of every route's inputs."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sedna_core.config import ServiceConfig
from sedna_core.service import (
    GUARD_KEY,
    METRICS_KEY,
    HttpClient,
    ServiceRunner,
    SyncClient,
    create_app,
    read_json,
)

TOKEN = "s3cret-token"
WAIT = 30.0  # a safety net for blocking reads: the server cuts the crowd long before this


async def echo(request: web.Request) -> web.Response:
    return web.json_response(await read_json(request))


@pytest.fixture
def guarded() -> Iterator[ServiceRunner]:
    """A server with small timeouts and a pending-connection cap of 8."""
    config = ServiceConfig.from_env(
        {},
        token=TOKEN,
        header_timeout=0.5,
        body_timeout=0.5,
        max_pending_connections=8,
        max_json_size=4096,
    )
    app = create_app(name="guarded", config=config)
    app.router.add_post("/echo", echo)
    runner = ServiceRunner(app, config)
    runner.start_in_background()
    try:
        yield runner
    finally:
        runner.stop_background()


def _connect(runner: ServiceRunner) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", runner.port), timeout=WAIT)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends before it closes (a reset counts as closed)."""
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except ConnectionResetError:
        pass
    finally:
        sock.close()
    return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b"\r\n", 1)[0].split()[1])


def _dropped(runner: ServiceRunner) -> dict[str, float]:
    text = runner.app[METRICS_KEY].render()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("sedna_http_connections_dropped_total{"):
            reason = line.split('reason="', 1)[1].split('"', 1)[0]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def test_slow_crowd_is_cut_off_and_a_legitimate_client_is_served(guarded: ServiceRunner) -> None:
    # 20 header tricklers: a request line and one header, never the blank line that ends them
    header_crowd = []
    for _ in range(20):
        sock = _connect(guarded)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        header_crowd.append(sock)
    # 5 authenticated body tricklers: complete headers, 5 of the 1000 bytes they announce
    body_crowd = []
    for _ in range(5):
        sock = _connect(guarded)
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n[1, 2"
        )
        body_crowd.append(sock)
    guard = guarded.app[GUARD_KEY]
    assert guard.pending <= 8  # tricklers were evicted, or refused while the cap held fresh ones

    # a legitimate client, arriving last, is served while the crowd is still there (retrying a
    # 503 if the server had not read the crowd's bytes yet: then nobody had a chance to evict)
    with SyncClient(HttpClient(guarded.url, token=TOKEN, retries=5)) as client:
        assert client.post("/echo", json={"ok": [1, 2]}).json() == {"ok": [1, 2]}

    # trickling more does not buy time: the header deadline counts from the connection's start
    for sock in header_crowd[-3:]:
        with contextlib.suppress(OSError):
            sock.sendall(b"X-Slow: 1\r\n")
    header_answers = [_read_until_closed(s) for s in header_crowd]
    body_answers = [_read_until_closed(s) for s in body_crowd]
    # evicted ones were reset (nothing); a connection made while the cap held only fresh ones
    # (the server had not read their bytes yet) was refused (503); the rest timed out (408)
    answered = [a for a in header_answers if a]
    assert all(_status(a) in (408, 503) for a in answered)
    timed_out = [a for a in answered if _status(a) == 408]
    assert b"SEDNA_HEADER_TIMEOUT" in timed_out[0]
    refused = [a for a in answered + body_answers if _status(a) == 503]
    assert all(b"Retry-After: 1" in a for a in refused)
    body_timed_out = [a for a in body_answers if _status(a) != 503]
    for answer in body_timed_out:
        assert _status(answer) == 408
        assert b"SEDNA_BODY_TIMEOUT" in answer
    dropped = _dropped(guarded)
    evicted, header_refused = dropped.get("evicted", 0), len(answered) - len(timed_out)
    assert evicted + dropped.get("header_timeout", 0) + header_refused == 20
    assert evicted + header_refused >= 12  # never more than 8 pending
    assert dropped.get("refused", 0) >= len(refused)  # the client's refused tries count too
    assert dropped.get("body_timeout", 0) == len(body_timed_out)
    # and the server still serves
    with SyncClient(HttpClient(guarded.url, token=TOKEN, retries=0)) as client:
        assert client.get("/healthz").json()["status"] == "ok"


def test_an_idle_fresh_connection_is_closed_after_the_header_timeout(
    guarded: ServiceRunner,
) -> None:
    sock = _connect(guarded)
    answer = _read_until_closed(sock)
    assert _status(answer) == 408
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]["type"] == "request_timeout"


def _raw(port: int, request: bytes) -> tuple[int, dict[str, Any]]:
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(request)
        raw = _read_until_closed(sock)
    head, _, body = raw.partition(b"\r\n\r\n")
    return _status(head), json.loads(body) if body else {}


def _servers(tmp_path: Path) -> Iterator[tuple[str, int, str, str]]:
    """(name, port, method, path) of the three servers, each with a token, started."""
    from sedna_core.jobs.federated import AggregationServer
    from sedna_core.jobs.joint_inference import BigModelService
    from sedna_core.knowledge_base import KnowledgeBaseServer

    class Model:
        def predict(self, x: Any) -> Any:
            return np.asarray(x, dtype=float) * np.nan  # non-finite outputs on purpose

    kb = KnowledgeBaseServer(data_dir=str(tmp_path / "kb"), port=0, token=TOKEN)
    kb.start_in_background()
    ji = BigModelService(Model(), host="127.0.0.1", port=0, job_name="ji", token=TOKEN)
    ji.start(block=False)
    agg = AggregationServer(
        "FedAvg",
        exit_round=1,
        participants_count=1,
        port=0,
        token=TOKEN,
        initial_weights=[np.zeros(2, np.float32)],
    )
    agg.start_in_background()
    try:
        yield from (
            ("knowledgebase", kb.port, "GET", "/knowledgebase/index/version"),
            ("inference", int(ji.url.rsplit(":", 1)[1]), "POST", "/ji/predict"),
            ("aggregation", agg.port, "GET", "/fl/status"),
        )
    finally:
        kb.stop_background()
        ji.close()
        agg.stop_background()


def test_non_utf8_bearer_tokens_are_401_on_all_three_servers(tmp_path: Path) -> None:
    seen = []
    for name, port, method, path in _servers(tmp_path):
        for token in (b"\xff\xfe\xfd", b"s3cret-\xe9", b"\xed\xa0\x80"):
            status, body = _raw(
                port,
                f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
                + b"Content-Length: 0\r\nAuthorization: Bearer "
                + token
                + b"\r\n\r\n",
            )
            assert status == 401, (name, token, body)
            assert body["error"]["type"] == "unauthorized"
        seen.append(name)
    assert seen == ["knowledgebase", "inference", "aggregation"]


def test_hostile_json_is_a_400_naming_the_problem(guarded: ServiceRunner) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    cases = {
        b"[" * 1500 + b"]" * 1500: "levels deep",
        b'{"a": NaN}': "NaN is not a JSON number",
        b"[Infinity]": "Infinity is not a JSON number",
        b'"\xff"': "not UTF-8",
        b"": "empty",
        b"1" * 4500: "413",
    }
    conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=WAIT)
    for body, says in cases.items():
        conn.request("POST", "/echo", body=body, headers=headers)
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        if says == "413":
            assert resp.status == 413 and "SEDNA_MAX_JSON_SIZE" in doc["error"]["message"]
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", guarded.port, timeout=WAIT)
            continue
        assert resp.status == 400, (body[:20], doc)
        assert says in doc["error"]["message"]
    # a JSON body over the JSON cap without a Content-Length (chunked) is cut while reading
    conn.putrequest("POST", "/echo")
    for k, v in headers.items():
        conn.putheader(k, v)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    for _ in range(3):
        piece = b"[" + b"1," * 1000 + b"1]"
        conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
    conn.send(b"0\r\n\r\n")
    resp = conn.getresponse()
    assert resp.status == 413, resp.read()
    conn.close()


def test_json_predict_refuses_nan_input_and_never_answers_bare_nan(tmp_path: Path) -> None:
    from sedna_core.jobs.joint_inference import BigModelService

    class Model:
        def predict(self, x: Any) -> Any:
            out = np.asarray(x, dtype=float)
            out[0, 0] = np.nan
            out[0, 1] = np.inf
            return out

    svc = BigModelService(Model(), host="127.0.0.1", port=0, job_name="ji")
    svc.start(block=False)
    try:
        port = int(svc.url.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
        headers = {"Content-Type": "application/json"}
        conn.request("POST", "/ji/predict", body=b'{"data": [[NaN, 1.0]]}', headers=headers)
        resp = conn.getresponse()
        assert resp.status == 400
        assert "NaN is not a JSON number" in json.loads(resp.read())["error"]["message"]
        conn.request("POST", "/ji/predict", body=b'{"data": [[1.0, 2.0, 3.0]]}', headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        assert resp.status == 200
        assert b"NaN" not in text.replace(b'"NaN"', b"")  # only as the documented string
        doc = json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c} in JSON"))
        assert doc["result"] == [["NaN", "Infinity", 3.0]]
        conn.close()
    finally:
        svc.close()


# -- fuzz: every route's headers, query and JSON body --------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
_header_bytes = st.binary(min_size=0, max_size=24).filter(
    lambda b: b"\r" not in b and b"\n" not in b
)
_query_text = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=12
)


def fuzz_routes(
    port: int,
    routes: list[tuple[str, str]],
    data: st.DataObject,
    *,
    token: str,
    json_keys: tuple[str, ...] = (),
) -> None:
    """One fuzzed request to one route: no 500, and the server still answers /healthz."""
    from urllib.parse import quote

    method, path = data.draw(st.sampled_from(routes), label="route")
    params = data.draw(
        st.dictionaries(
            st.sampled_from(
                ["version", "files", "name", "format", "task", "group", "deployed", "attr.x", "x"]
            ),
            _query_text,
            max_size=3,
        ),
        label="query",
    )
    query = "&".join(f"{quote(k)}={quote(v)}" for k, v in params.items())
    body_doc = data.draw(
        _json | st.fixed_dictionaries({}, optional={k: _json for k in json_keys}), label="body"
    )
    body = json.dumps(body_doc).encode()
    auth = data.draw(
        st.sampled_from([b"Bearer " + token.encode(), b"Bearer \xff\xfe", b""]) | _header_bytes,
        label="authorization",
    )
    content_type = data.draw(
        st.sampled_from([b"application/json", b"text/plain", b"multipart/form-data", b"\xff"]),
        label="content-type",
    )
    head = (
        f"{method} {path}{'?' + query if query else ''} HTTP/1.1\r\nHost: x\r\n"
        "Connection: close\r\n"
    ).encode()
    head += b"Authorization: " + auth + b"\r\nContent-Type: " + content_type + b"\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as sock:
        sock.sendall(head + body)
        raw = _read_until_closed(sock)
    status = _status(raw)
    assert status < 500, raw[:600]
    health = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    health.request("GET", "/healthz")
    assert health.getresponse().status == 200
    health.close()


_FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def three(tmp_path: Path) -> Iterator[list[tuple[str, int, str, str]]]:
    servers = _servers(tmp_path)
    started = [next(servers) for _ in range(3)]
    yield started
    servers.close()


@_FUZZ
@given(data=st.data())
def test_fuzz_knowledge_base_routes_never_500(
    three: list[tuple[str, int, str, str]], data: st.DataObject
) -> None:
    _, kb_port, _, _ = three[0]
    kb = "/knowledgebase"
    fuzz_routes(
        kb_port,
        [
            ("POST", f"{kb}/file/upload"),
            ("GET", f"{kb}/file/download"),
            ("POST", f"{kb}/update"),
            ("POST", f"{kb}/update/status"),
            ("POST", f"{kb}/query"),
            ("GET", f"{kb}/query"),
            ("GET", f"{kb}/index"),
            ("GET", f"{kb}/index/version"),
            ("GET", f"{kb}/files"),
        ],
        data,
        token=TOKEN,
        json_keys=("tasks", "status", "reason", "attributes", "task", "group", "deployed"),
    )


@_FUZZ
@given(data=st.data())
def test_fuzz_inference_and_aggregation_routes_never_500(
    three: list[tuple[str, int, str, str]], data: st.DataObject
) -> None:
    _, ji_port, _, _ = three[1]
    _, agg_port, _, _ = three[2]
    fuzz_routes(
        ji_port,
        [("POST", "/ji/predict"), ("GET", "/ji/predict"), ("GET", "/ji"), ("GET", "/metrics")],
        data,
        token=TOKEN,
        json_keys=("data",),
    )
    fuzz_routes(
        agg_port,
        [("GET", "/fl/status"), ("GET", "/fl"), ("GET", "/FedAvg"), ("POST", "/fl/status")],
        data,
        token=TOKEN,
    )


_LIMITED_SERVER = """
import resource, sys, threading
resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))
from aiohttp import web
from sedna_core.config import ServiceConfig
from sedna_core.service import ServiceRunner, create_app

async def hello(request):
    return web.json_response({"hello": "world"})

# the default cap (64); header timeout of an hour: only the cap can save the client here
config = ServiceConfig.from_env({}, token="s3cret-token", header_timeout=3600)
app = create_app(name="limited", config=config)
app.router.add_get("/hello", hello)
runner = ServiceRunner(app, config)
runner.start_in_background()
print(runner.port, flush=True)
sys.stdin.read()  # until the test closes our stdin
"""


def test_a_slow_crowd_larger_than_the_descriptor_limit_cannot_starve_a_client() -> None:
    """The attack as reported: 150 header tricklers against a server limited to 128 file
    descriptors. With a header timeout of an hour, the pending-connection cap (64) alone keeps
    descriptors free, so a legitimate client is answered (else its read would time out)."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _LIMITED_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    crowd: list[socket.socket] = []
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        for _ in range(150):
            sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
            sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\n")
            crowd.append(sock)
        for _ in range(3):  # repeatedly, with the crowd still connected
            status, body = _raw(
                port,
                b"GET /hello HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret-token\r\n"
                b"Connection: close\r\n\r\n",
            )
            assert (status, body) == (200, {"hello": "world"})
    finally:
        for sock in crowd:
            sock.close()
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(WAIT)
