"""The knowledge-base service on 127.0.0.1: uploads, downloads, index publishing, status,
queries, and what it refuses."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import pickle
import time

import aiohttp
import numpy as np
import pytest

from sedna_core.errors import AuthenticationError, KnowledgeBaseError, RemoteError
from sedna_core.knowledge_base import KnowledgeBaseClient, KnowledgeBaseServer


def index_doc(refs, *, deployed=True, attrs=None):
    groups = []
    for i, (entry, ref) in enumerate(refs.items()):
        groups.append(
            {
                "entry": entry,
                "deployed": deployed,
                "sample_num": 5,
                "tasks": [
                    {
                        "entry": entry,
                        "task_id": i,
                        "meta_attr": (attrs or {}).get(entry, {"name": entry}),
                        "sample_num": 5,
                    }
                ],
                "model": {k: ref[k] for k in ("name", "version", "sha256", "format", "size")},
            }
        )
    return {
        "schema": "sedna.lifelong.task_index",
        "schema_version": 1,
        "create_time": time.time(),
        "job": "test",
        "seen_task": {"task_groups": groups},
        "unseen_task": {"task_groups": []},
    }


def test_ll_fifty_concurrent_uploads_leave_fifty_rows_and_intact_files(kb_dir, db_url):
    with KnowledgeBaseServer(data_dir=str(kb_dir), db_url=db_url, port=0) as kb_server:
        _fifty_uploads(kb_server)


def _fifty_uploads(kb_server):
    payloads = [json.dumps([f"model-{i}"] * (100 + i)).encode() for i in range(50)]

    async def upload_all():
        async with aiohttp.ClientSession() as session:

            async def one(i, body):
                async with session.post(
                    f"{kb_server.url}/knowledgebase/file/upload",
                    params={"name": f"m{i}.json", "format": "json"},
                    data=body,
                ) as resp:
                    assert resp.status == 200, await resp.text()
                    return json.loads(resp.headers["X-Sedna-Artifact"])

            return await asyncio.gather(*(one(i, b) for i, b in enumerate(payloads)))

    records = asyncio.run(upload_all())
    assert len({r["sha256"] for r in records}) == 50
    with KnowledgeBaseClient(kb_server.url) as client:
        assert len(client.files()) == 50
        assert kb_server.db.counts()["kb_files"] == 50
        for record, body in zip(records, payloads, strict=True):
            assert record["sha256"] == hashlib.sha256(body).hexdigest()
            stored = kb_server.store.read_bytes(record["name"], record["version"])  # verified
            assert stored == body


def test_ll_path_traversal_is_refused(kb_server, kb_dir):
    secret = kb_dir.parent / "secret.txt"
    secret.write_text("do not serve me")
    with KnowledgeBaseClient(kb_server.url, retries=0) as client:
        for ref in ("../secret.txt", "../../secret.txt", "/etc/passwd", "..%2Fsecret.txt", "."):
            with pytest.raises(RemoteError) as err:
                client._http.get("/knowledgebase/file/download", params={"files": ref})
            assert err.value.status in (400, 404)
        # a client-chosen file name never becomes a path: it is reduced to a safe name
        record = client.upload_file(b"1", filename="../../escape.json")
        assert record["name"] == "escape.json"
        assert not (kb_dir.parent / "escape.json").exists()
        assert kb_server.store.path("escape.json").is_relative_to(kb_dir)


@pytest.mark.parametrize(
    "payload, name",
    [
        (pickle.dumps({"evil": 1}), "model.bin"),
        (pickle.dumps([1, 2], protocol=2), "x.model"),
        (b"harmless bytes", "index.pkl"),
    ],
    ids=["pickle-protocol-4", "pickle-protocol-2", "pkl-file-name"],
)
def test_ll_pickled_uploads_are_refused(kb_server, payload, name):
    with KnowledgeBaseClient(kb_server.url, retries=0) as client:
        with pytest.raises(RemoteError) as err:
            client.upload_file(payload, filename=name)
        assert err.value.status == 415
        assert "pickle" in str(err.value)
        assert client.files() == []


def test_ll_numpy_object_arrays_are_refused_plain_ones_accepted(kb_server):
    objects, plain = io.BytesIO(), io.BytesIO()
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    np.savez(plain, x=np.arange(4.0))
    with KnowledgeBaseClient(kb_server.url, retries=0) as client:
        with pytest.raises(RemoteError, match="Python objects"):
            client.upload_file(objects.getvalue(), filename="a.npy")
        assert client.upload_file(plain.getvalue(), filename="a.npz")["format"] == "npz"


def test_ll_pickled_index_is_refused_sedna_style(kb_server):
    async def send():
        form = aiohttp.FormData()
        form.add_field("task", pickle.dumps({"seen_task": {}}), filename="index.pkl")
        url = f"{kb_server.url}/knowledgebase/update"
        async with aiohttp.ClientSession() as s, s.post(url, data=form) as resp:
            return resp.status, await resp.json()

    status, body = asyncio.run(send())
    assert status == 415
    assert body["error"]["type"] == "pickle_refused"
    assert kb_server.db.latest_version() is None


def test_ll_malformed_index_is_rejected_with_a_clear_error(kb_server):
    with KnowledgeBaseClient(kb_server.url, retries=0) as client:
        ref = client.upload_file(b"{}", name="a.json")
        bad = index_doc({"a": ref})
        bad["seen_task"]["task_groups"][0]["tasks"][0]["task_id"] = -3
        with pytest.raises(RemoteError) as err:
            client._http.post("/knowledgebase/update", json=bad)
        assert err.value.status == 400
        assert err.value.error_type == "invalid_index"
        assert "seen_task/task_groups/0/tasks/0/task_id" in err.value.remote_message
        missing = index_doc({"a": {**ref, "sha256": "c" * 64}})
        with pytest.raises(RemoteError) as err:
            client.update_index(missing)
        assert err.value.error_type == "missing_artifact"
        with pytest.raises(RemoteError) as err:
            client._http.post(
                "/knowledgebase/update",
                data=b"{not json",
                headers={"Content-Type": "application/json"},
            )
        assert err.value.error_type == "invalid_json"
        with pytest.raises(KnowledgeBaseError, match="no task index"):
            client.get_index()


def test_ll_status_updates_and_everything_else_survive_a_restart(kb_dir, db_url):
    server = KnowledgeBaseServer(data_dir=str(kb_dir), db_url=db_url, port=0)
    server.start_in_background()
    try:
        with KnowledgeBaseClient(server.url) as client:
            refs = {
                e: client.upload_file(b'"%s"' % (e.encode() * 10), name=f"{e}.json") for e in "ab"
            }
            attrs = {"a": {"season": "summer"}, "b": {"season": "winter"}}
            assert client.update_index(index_doc(refs, attrs=attrs)) == 1
            result = client.update_status("b", 0, reason="score below threshold")
            assert result["updated"] == ["b"] and result["version"] == 2
            with pytest.raises(RemoteError) as err:
                client.update_status("zzz", 1)
            assert err.value.status == 404
    finally:
        server.stop_background()
    restarted = KnowledgeBaseServer(data_dir=str(kb_dir), db_url=db_url, port=0)
    restarted.start_in_background()
    try:
        with KnowledgeBaseClient(restarted.url) as client:
            assert client.latest_version() == 2
            doc = client.get_index()
            assert [g["deployed"] for g in doc["seen_task"]["task_groups"]] == [True, False]
            assert [t["task"] for t in client.query({"season": "winter"})] == ["b"]
            assert client.query({"season": "winter"})[0]["deployed"] is False
            assert [t["task"] for t in client.query(deployed=True)] == ["a"]
            for entry, body in (("a", b'"%s"' % (b"a" * 10)), ("b", b'"%s"' % (b"b" * 10))):
                ref = doc["seen_task"]["task_groups"][0 if entry == "a" else 1]["model"]
                path = client.download_file(ref, kb_dir.parent / "dl" / entry)
                assert path.read_bytes() == body
            assert client.get_index(1)["seen_task"]["task_groups"][1]["deployed"] is True
    finally:
        restarted.stop_background()


def test_ll_query_endpoint_get_and_post(kb_server):
    with KnowledgeBaseClient(kb_server.url) as client:
        ref = client.upload_file(b"1", name="m.json")
        client.update_index(index_doc({"t1": ref}, attrs={"t1": {"city": "rome"}}))
        got = client._http.get("/knowledgebase/query", params={"attr.city": "rome"}).json()
        assert [t["task"] for t in got["tasks"]] == ["t1"]
        assert got["tasks"][0]["model"]["sha256"] == ref["sha256"]
        assert client.query({"city": "oslo"}) == []


def test_ll_token_protects_everything_but_health(kb_dir):
    server = KnowledgeBaseServer(data_dir=str(kb_dir), port=0, token="s3cret")
    server.start_in_background()
    try:
        with KnowledgeBaseClient(server.url, retries=0) as anonymous:
            with pytest.raises(AuthenticationError):
                anonymous.latest_version()
            assert anonymous._http.get("/healthz").json()["status"] == "ok"
        with KnowledgeBaseClient(server.url, token="s3cret") as client:
            assert client.latest_version() is None
    finally:
        server.stop_background()


def test_ll_download_by_name_and_version(kb_server):
    with KnowledgeBaseClient(kb_server.url) as client:
        first = client.upload_file(b'"v1"', name="model.json")
        second = client.upload_file(b'"v2"', name="model.json")
        assert (first["version"], second["version"]) == ("1", "2")
        latest = client._http.get("/knowledgebase/file/download", params={"files": "model.json"})
        assert latest.body == b'"v2"'
        old = client._http.get(
            "/knowledgebase/file/download", params={"files": "model.json", "version": "1"}
        )
        assert old.body == b'"v1"'
        assert old.headers["X-Sedna-SHA256"] == first["sha256"]
        assert json.loads(json.dumps(first))["url"].startswith("/knowledgebase/file/download")
