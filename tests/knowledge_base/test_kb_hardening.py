"""The knowledge base after an outside attack, on 127.0.0.1: malformed queries are 400s, only
formats verified by parsing are stored (one crafted malicious or disguised sample per accepted
format is refused), a real ``kill -9`` under concurrent uploads leaves acknowledged == stored ==
downloadable with no orphan served, and Sedna's real lifelong KB client gets Sedna's answers."""

from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from structlog.testing import capture_logs

from sedna_core.artifacts import ArtifactStore
from sedna_core.artifacts._formats import ACCEPTED_FORMATS
from sedna_core.errors import RemoteError
from sedna_core.knowledge_base import KnowledgeBaseClient, KnowledgeBaseServer

WAIT = 60.0


def _request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, Any, dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None, dict(resp.getheaders())
    finally:
        conn.close()


# -- item 2: malformed inputs are 400s naming the problem -----------------------------------------


@pytest.mark.parametrize(
    "method, path, body, says",
    [
        ("POST", "/knowledgebase/query", {"task": {"$ne": 1}}, "task: a string"),
        ("POST", "/knowledgebase/query", {"group": ["a", "b"]}, "group: a string"),
        ("POST", "/knowledgebase/query", {"attributes": {"a": {"b": 1}}}, "attributes"),
        ("POST", "/knowledgebase/query", {"deployed": [1]}, "deployed"),
        ("GET", "/knowledgebase/index?version=%C2%B2", None, "version"),
        ("GET", "/knowledgebase/index?version=" + "9" * 23, None, "at most 18 digits"),
        ("GET", "/knowledgebase/file/download?files=m.json&version=-1", None, "version"),
        ("POST", "/knowledgebase/update", "[" * 3000 + "]" * 3000, "levels deep"),
        ("POST", "/knowledgebase/update/status", {"tasks": "a", "status": 0.5}, "status"),
        (
            "POST",
            "/knowledgebase/update/status",
            {"tasks": "a", "status": 1, "reason": {}},
            "reason",
        ),
    ],
    ids=[
        "task-object",
        "group-list",
        "attribute-object",
        "deployed-list",
        "version-superscript",
        "version-23-digits",
        "download-version-negative",
        "deeply-nested-index",
        "status-fraction",
        "reason-object",
    ],
)
def test_malformed_kb_requests_are_400s_naming_the_problem(
    kb_server: KnowledgeBaseServer, method: str, path: str, body: Any, says: str
) -> None:
    raw = b"" if body is None else (body if isinstance(body, str) else json.dumps(body)).encode()
    status, doc, _ = _request(
        kb_server.port, method, path, raw, {"Content-Type": "application/json"}
    )
    assert status == 400, doc
    assert says in doc["error"]["message"]
    assert _request(kb_server.port, "GET", "/healthz")[0] == 200


# -- item 5: an allow-list verified by parsing ----------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG = (
    b"\x89PNG\r\n\x1a\n"
    + _chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
    + _chunk(b"IDAT", zlib.compress(b"\x00\x00"))
    + _chunk(b"IEND", b"")
)
JPEG = (
    b"\xff\xd8"
    + b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    + b"\xff\xda\x00\x08\x01\x01\x00\x00\x3f\x00"
    + b"\x12\x34\xff\x00\x56"
    + b"\xff\xd9"
)
GIF = (
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00"
    + b"\x2c\x00\x00\x00\x00\x01\x00\x01\x00\x00"
    + b"\x02\x02\x44\x01\x00"
    + b"\x3b"
)
BMP_PIXELS = b"\x00\x00\xff\x00"
BMP = (
    b"BM"
    + struct.pack("<IIII", 14 + 40 + 4, 0, 54, 40)
    + struct.pack("<iiHHIIiiII", 1, 1, 1, 24, 0, 4, 2835, 2835, 0, 0)
    + BMP_PIXELS
)
_VP8L = b"\x2f\x00\x00\x00\x10\x07\x10\x11\x11\x88\x88\xfe\x07\x00"
WEBP = b"RIFF" + struct.pack("<I", 4 + 8 + len(_VP8L)) + b"WEBP" + b"VP8L"
WEBP += struct.pack("<I", len(_VP8L)) + _VP8L
ONNX_GRAPH = b"\x12\x01g"  # GraphProto.name = "g"
ONNX = b"\x08\x07" + b"\x3a" + bytes([len(ONNX_GRAPH)]) + ONNX_GRAPH
UBJ = b"{i\x07learner{}i\x07version[$i#i\x03\x02\x00\x00}"
EVIL = pickle.dumps(os.system, protocol=0)  # a protocol-0 pickle that names os.system


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return buf.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _keras(config: dict[str, Any], **extra: bytes) -> bytes:
    return _zip(
        {
            "metadata.json": b'{"keras_version": "3.0.0"}',
            "config.json": json.dumps(config).encode(),
            "model.weights.npz": _npz(w=np.ones(3)),
            **extra,
        }
    )


def _padded_object_npy() -> bytes:
    """An object-dtype .npy whose header is padded with spaces to look like plain data."""
    body = _npy(np.array([{"a": 1}], dtype=object))
    head_len = struct.unpack("<H", body[8:10])[0]
    header = body[10 : 10 + head_len].rstrip(b"\n").rstrip() + b" " * 200 + b"\n"
    return body[:8] + struct.pack("<H", len(header)) + header + body[10 + head_len :]


def _safetensors() -> bytes:
    from safetensors.numpy import save

    return save({"w": np.ones((2, 2), np.float32)})


def _skops_ok() -> bytes:
    from sklearn.linear_model import LogisticRegression

    skops_io = pytest.importorskip("skops.io")
    model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
    return skops_io.dumps(model)


class NotTrusted:  # an arbitrary class: skops would have to import and build it
    def __init__(self) -> None:
        self.x = 1


def _skops_untrusted() -> bytes:
    skops_io = pytest.importorskip("skops.io")
    return skops_io.dumps({"model": NotTrusted()})


# (format, a valid sample, a crafted malicious or disguised sample of that format)
SAMPLES: list[tuple[str, Any, Any]] = [
    ("safetensors", _safetensors, lambda: _safetensors() + EVIL),
    (
        "keras",
        lambda: _keras({"class_name": "Sequential"}),
        lambda: _keras(
            {
                "layers": [
                    {"class_name": "Lambda", "config": {"function": {"class_name": "__lambda__"}}}
                ]
            }
        ),
    ),
    ("json", lambda: b'{"learner": {"gradient_booster": {}}, "version": [2, 0, 0]}', lambda: EVIL),
    ("ubj", lambda: UBJ, lambda: UBJ + EVIL),
    ("skops", _skops_ok, _skops_untrusted),
    ("onnx", lambda: ONNX, lambda: pickle.dumps({"graph": 1}, protocol=2)),
    ("npy", lambda: _npy(np.arange(4.0)), _padded_object_npy),
    ("npz", lambda: _npz(x=np.arange(3)), lambda: _npz(x=np.array([{"a": 1}], dtype=object))),
    ("csv", lambda: b"a,b\n1,2\n", lambda: EVIL),
    ("txt", lambda: b"hello, world\n", lambda: pickle.dumps([1, 2], protocol=1)),
    ("png", lambda: PNG, lambda: PNG + EVIL),
    ("jpeg", lambda: JPEG, lambda: JPEG[:-2] + b"\xff\xd9" + EVIL),
    ("gif", lambda: GIF, lambda: GIF + EVIL),
    ("bmp", lambda: BMP, lambda: BMP + EVIL),
    ("webp", lambda: WEBP, lambda: WEBP + EVIL),
]


def test_every_accepted_format_has_a_sample() -> None:
    assert sorted(f for f, _, _ in SAMPLES) == sorted(ACCEPTED_FORMATS)


@pytest.mark.parametrize("fmt, good, evil", SAMPLES, ids=[s[0] for s in SAMPLES])
def test_each_accepted_format_is_verified_and_its_crafted_sample_refused(
    kb_server: KnowledgeBaseServer, fmt: str, good: Any, evil: Any
) -> None:
    with KnowledgeBaseClient(kb_server.url, retries=0) as client:
        record = client.upload_file(good(), filename=f"good.{fmt}")
        assert record["verified_as"] == fmt
        with pytest.raises(RemoteError) as err:
            client.upload_file(evil(), filename=f"evil.{fmt}")
        assert err.value.status == 415
        assert err.value.error_type in ("unsupported_artifact", "pickle_refused")
        assert [f["name"] for f in client.files()] == [f"good.{fmt}"]


@pytest.mark.parametrize(
    "payload",
    [
        pickle.dumps({"evil": 1}, protocol=0),
        pickle.dumps({"evil": 1}, protocol=1),
        pickle.dumps({"evil": 1}, protocol=2)[2:],  # no PROTO opcode
        pickle.dumps({"evil": 1}, protocol=4)[2:],
        pickle.dumps({"evil": 1}, protocol=5),
        gzip.compress(pickle.dumps({"evil": 1}, protocol=0)),
        zlib.compress(pickle.dumps({"evil": 1})),
        _zip({"data.pkl": pickle.dumps(1)}),  # torch.save's layout
        b"\x00\x01\x02 random bytes",
    ],
    ids=["p0", "p1", "p2-noproto", "p4-noproto", "p5", "gzip-p0", "zlib", "torch-zip", "random"],
)
def test_generic_uploads_must_parse_as_an_accepted_format(
    kb_server: KnowledgeBaseServer, payload: bytes
) -> None:
    status, doc, _ = _request(
        kb_server.port, "POST", "/knowledgebase/file/upload?name=hot.bin", payload
    )
    assert status == 415, doc
    assert doc["error"]["accepted"] == list(ACCEPTED_FORMATS)
    assert "accepted formats: safetensors, keras, json" in doc["error"]["message"]
    assert kb_server.db.files() == []


def test_empty_bodies_are_refused(kb_server: KnowledgeBaseServer) -> None:
    status, doc, _ = _request(kb_server.port, "POST", "/knowledgebase/file/upload?name=a.json")
    assert status == 400 and doc["error"]["type"] == "empty_file"
    form = (
        b'--b\r\nContent-Disposition: form-data; name="file"; filename="s.json"\r\n\r\n'
        b"\r\n--b--\r\n"
    )
    status, doc, _ = _request(
        kb_server.port,
        "POST",
        "/knowledgebase/file/upload",
        form,
        {"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert status == 400 and doc["error"]["type"] == "empty_file"
    assert kb_server.db.files() == []


# -- item 6: kill -9 under concurrent uploads -----------------------------------------------------

_KB_PROCESS = """
import sys, threading
from sedna_core.knowledge_base import KnowledgeBaseServer
server = KnowledgeBaseServer(data_dir=sys.argv[1], port=0)
server.start_in_background()
print(server.port, flush=True)
threading.Event().wait()
"""


def test_kill_9_under_concurrent_uploads_leaves_no_orphan_served(tmp_path: Path) -> None:
    data_dir = tmp_path / "kb"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KB_PROCESS, str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        port = int(proc.stdout.readline())  # type: ignore[union-attr]
        acked: list[tuple[str, str, bytes]] = []  # (version, sha256, body)
        lock = threading.Lock()
        enough = threading.Event()

        def uploader(k: int) -> None:
            for i in range(10_000):
                body = json.dumps({"uploader": k, "i": i, "pad": "x" * (k * 97)}).encode()
                try:
                    status, _doc, headers = _request(
                        port, "POST", "/knowledgebase/file/upload?name=hot.bin&format=json", body
                    )
                except OSError:
                    return  # the server is gone
                assert status == 200
                record = json.loads(headers["X-Sedna-Artifact"])
                with lock:
                    acked.append((record["version"], record["sha256"], body))
                    if len(acked) >= 120:
                        enough.set()

        threads = [threading.Thread(target=uploader, args=(k,)) for k in range(40)]
        for t in threads:
            t.start()
        assert enough.wait(WAIT * 4)
        os.kill(proc.pid, signal.SIGKILL)  # mid-flight: some uploads are stored, not committed
        proc.wait(WAIT)
        for t in threads:
            t.join(WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(WAIT)

    store = ArtifactStore(data_dir / "artifacts")
    stored_before = {v.version for v in store.versions("hot.bin")}
    with capture_logs() as logs:
        server = KnowledgeBaseServer(data_dir=str(data_dir), port=0)
    committed = server.db.file_versions()
    committed_versions = {v for n, v in committed if n == "hot.bin"}
    orphans = stored_before - committed_versions
    swept = next(e for e in logs if e["event"] == "knowledge-base store swept")
    assert swept["orphan_versions"] == len(orphans)
    print(  # what the kill hit this time (the assertions hold whatever it hit)
        f"kill -9: {len(acked)} acknowledged, {len(committed_versions)} committed, "
        f"{len(orphans)} orphan versions swept"
    )
    server.start_in_background()
    try:
        # acknowledged ⊆ committed (an upload committed just before the kill may be unacked)
        assert {v for v, _, _ in acked} <= committed_versions
        # stored == committed: the sweep removed what was never committed
        assert {v.version for v in server.store.versions("hot.bin")} == committed_versions
        with KnowledgeBaseClient(server.url, retries=0) as client:
            # downloadable: every acknowledged upload, by name+version and by sha256
            for version, sha, body in acked:
                got = client._http.get(
                    "/knowledgebase/file/download", params={"files": "hot.bin", "version": version}
                ).body
                assert got == body
                assert (
                    client._http.get("/knowledgebase/file/download", params={"files": sha}).body
                    == body
                )
            # an uncommitted version (a put whose commit has not happened) is never served
            latest = max(committed_versions, key=int)
            orphan = server.store.put("hot.bin", b'"orphan"', format="json")
            assert int(orphan.version) > int(latest)
            got = client._http.get("/knowledgebase/file/download", params={"files": "hot.bin"})
            assert got.headers["X-Sedna-SHA256"] != orphan.sha256
            for params in (
                {"files": "hot.bin", "version": orphan.version},
                {"files": orphan.sha256},
            ):
                with pytest.raises(RemoteError) as err:
                    client._http.get("/knowledgebase/file/download", params=params)
                assert err.value.status == 404
    finally:
        server.stop_background()


# -- issue 15 item 10: Sedna's real lifelong KB client ---------------------------------------------

_SEDNA_KB_CLIENT = r"""
import json, os
import tenacity
import sedna.service.client as sedna_client
from sedna.common.file_ops import FileOps
from sedna.service.client import KBClient

# Sedna's http_request retries a failed call 5 times, 3 s apart: keep the attempts, drop the wait
sedna_client.http_request.retry.wait = tenacity.wait_none()
work = os.getcwd()
kb = KBClient(kbserver=os.environ["KB_SERVER"])
out = {}
with open(os.path.join(work, "model.json"), "w") as fh:
    json.dump({"w": [1, 2, 3]}, fh)
out["model"] = kb.upload_file(os.path.join(work, "model.json"))
extractor = os.path.join(work, "seen_task_extractor.pkl")
FileOps.dump({"extractor": "pickled by Sedna"}, extractor)
try:
    out["extractor"] = kb.upload_file(extractor)
except Exception as exc:  # what Sedna's cloud_knowledge_management logs: "Upload ... fail: {err}"
    out["extractor_error"] = type(exc).__name__
index = os.path.join(work, "index.pkl")
FileOps.dump({"seen_task": {}, "unseen_task": {}}, index)
out["update_db"] = kb.update_db(index)
out["status"] = kb.update_task_status("t1", new_status=0)
print("RESULT " + json.dumps(out), flush=True)
"""


def test_sedna_real_lifelong_kb_client(real_sedna: Any, tmp_path: Path) -> None:
    server = KnowledgeBaseServer(data_dir=str(tmp_path / "kb"), port=0)
    server.start_in_background()
    try:
        with KnowledgeBaseClient(server.url) as client:  # a published index to withdraw from
            ref = client.upload_file(b'{"w": 0}', name="t1.json")
            doc = {
                "schema": "sedna.lifelong.task_index",
                "schema_version": 1,
                "create_time": 0.0,
                "job": "ll",
                "seen_task": {
                    "task_groups": [
                        {
                            "entry": "t1",
                            "tasks": [{"entry": "t1", "task_id": 0, "meta_attr": {}}],
                            "model": {k: ref[k] for k in ("name", "version", "sha256", "format")},
                        }
                    ]
                },
                "unseen_task": {"task_groups": []},
            }
            assert client.update_index(doc) == 1
        work = tmp_path / "work"
        work.mkdir()
        with capture_logs() as logs:
            done = real_sedna.run(
                _SEDNA_KB_CLIENT + "\n",
                real_sedna.env(KB_SERVER=server.url),
                cwd=work,
                timeout=300,
            )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        server.stop_background()
    result = json.loads(done.stdout.split("RESULT ", 1)[1])
    # uploads answer Sedna's string: its client builds the download URL from it
    model_url = result["model"]
    assert model_url.startswith(f"{server.url}/knowledgebase/file/download?files=")
    sha = hashlib.sha256(b'{"w": [1, 2, 3]}').hexdigest()
    assert f"files={sha}&name=model.json" in model_url
    # the pickled extractor and index are refused; Sedna's client logs the status it got
    assert result["extractor_error"] == "RetryError"
    assert result["update_db"] is None
    sedna_log = done.stdout + done.stderr
    assert "invalid status code" in sedna_log and "415" in sedna_log
    refusals = [e for e in logs if e["event"] == "upload refused"]
    assert refusals and "sedna kb import-sedna" in refusals[0]["reason"]
    # retried uploads reuse a read file handle: their empty bodies stored nothing
    assert [f["name"] for f in server.db.files()] == ["t1.json", "model.json"]
    # update/status answers Sedna's string too (the index URL)
    assert result["status"] == f"{server.url}/knowledgebase/index?version=2"
