"""Moving many files and large indexes (issue 20): the ``/file/bundle`` path, the edge cache's
batched refresh, the stored index served with an ETag, and the fallback to file-by-file
downloads against a knowledge base without bundles."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time

import aiohttp
import pytest

from sedna_core.errors import RemoteError, ServiceError
from sedna_core.knowledge_base import EdgeKnowledgeCache, KnowledgeBaseClient, KnowledgeBaseServer
from sedna_core.service import json_error


def index_of(refs):
    return {
        "schema": "sedna.lifelong.task_index",
        "schema_version": 1,
        "create_time": time.time(),
        "seen_task": {
            "task_groups": [
                {
                    "entry": f"g{i}",
                    "tasks": [{"entry": f"t{i}", "task_id": i, "meta_attr": {"site": f"s{i}"}}],
                    "model": {k: ref[k] for k in ("name", "sha256", "format", "size", "filename")},
                }
                for i, ref in enumerate(refs)
            ]
        },
        "unseen_task": {"task_groups": []},
    }


def upload(client, count, start=0):
    return [
        client.upload_file(json.dumps({"model": i}).encode(), name=f"m{i}.json")
        for i in range(start, start + count)
    ]


def post(url, path, body):
    with KnowledgeBaseClient(url, retries=0) as client:
        return client._http.post(f"/knowledgebase{path}", json=body)


def test_ll_bundle_answers_a_tar_of_committed_files_by_digest(kb_server):
    with KnowledgeBaseClient(kb_server.url) as client:
        refs = upload(client, 3)
    digests = [r["sha256"] for r in refs]
    response = post(kb_server.url, "/file/bundle", {"files": [*digests, digests[0]]})
    assert response.headers["Content-Type"] == "application/x-tar"
    with tarfile.open(fileobj=io.BytesIO(response.body), mode="r:") as archive:
        members = {m.name: archive.extractfile(m).read() for m in archive}
    assert list(members) == digests  # in the order asked, each once
    assert all(hashlib.sha256(data).hexdigest() == d for d, data in members.items())


@pytest.mark.parametrize(
    "body, status, kind",
    [
        ({"files": ["0" * 64]}, 404, "missing_artifact"),
        ({"files": []}, 400, "invalid_request"),
        ({"files": ["A" * 64]}, 400, "invalid_request"),
        ({"files": ["../../etc/passwd"]}, 400, "invalid_request"),
        ({"files": ["0" * 64] * 1001}, 400, "invalid_request"),
        (["0" * 64], 400, "invalid_request"),
    ],
)
def test_ll_bundle_refuses_what_it_cannot_serve(kb_server, body, status, kind):
    with pytest.raises(RemoteError) as caught:
        post(kb_server.url, "/file/bundle", body)
    assert caught.value.status == status and caught.value.error_type == kind


def test_ll_download_many_batches_and_writes_every_destination(kb_server, tmp_path):
    with KnowledgeBaseClient(kb_server.url) as client:
        refs = upload(client, 7)
        wanted = [(r, tmp_path / r["sha256"][:8] / r["filename"]) for r in refs]
        wanted.append((refs[0], tmp_path / "copy" / "again.json"))  # one digest, two files
        client.download_many(wanted, batch_files=3, concurrency=2)
    for ref, dest in wanted:
        assert hashlib.sha256(dest.read_bytes()).hexdigest() == ref["sha256"]
    assert not list(tmp_path.rglob(".*part*"))


def test_ll_index_is_served_as_stored_with_an_etag(kb_server):
    with KnowledgeBaseClient(kb_server.url) as client:
        client.update_index(index_of(upload(client, 2)))
        response = client._http.get("/knowledgebase/index")
        stored = kb_server.db.index_body()
        assert response.body.decode() == stored[1]
        assert response.headers["ETag"] == f'"{stored[2]}"'
        assert response.headers["X-Sedna-Index-Version"] == "1"
        same = client._http.get(
            "/knowledgebase/index", headers={"If-None-Match": response.headers["ETag"]}
        )
        assert same.status == 304 and same.body == b""
        other = client._http.get("/knowledgebase/index", headers={"If-None-Match": '"x"'})
        assert other.status == 200 and json.loads(other.body)["version"] == 1
        assert client.get_index(1)["version"] == 1


def test_ll_edge_refresh_fetches_only_missing_files_in_bundles(kb_server, tmp_path, monkeypatch):
    seen: list[str] = []
    original = aiohttp.ClientSession._request

    async def spy(self, method, url, *args, **kwargs):
        seen.append(f"{method} {str(url).split('?')[0].rsplit('/knowledgebase', 1)[-1]}")
        return await original(self, method, url, *args, **kwargs)

    with KnowledgeBaseClient(kb_server.url) as client:
        refs = upload(client, 40)
        client.update_index(index_of(refs))
        cache = EdgeKnowledgeCache(tmp_path / "edge", client)
        monkeypatch.setattr(aiohttp.ClientSession, "_request", spy)
        assert cache.refresh()
        assert seen == ["GET /index/version", "GET /index", "POST /file/bundle"]
        monkeypatch.undo()
        changed = upload(client, 1, start=100)
        client.update_index(index_of([*changed, *refs[1:]]))
        seen.clear()
        monkeypatch.setattr(aiohttp.ClientSession, "_request", spy)
        assert cache.refresh() and cache.version == 2
        assert seen == ["GET /index/version", "GET /index", "POST /file/bundle"]
    first = cache.index["seen_task"]["task_groups"][0]["model"]
    assert cache.path(first).read_bytes() == json.dumps({"model": 100}).encode()


def test_ll_a_damaged_stored_file_fails_the_refresh_and_keeps_the_cache(kb_server, tmp_path):
    with KnowledgeBaseClient(kb_server.url, retries=0) as client:
        refs = upload(client, 3)
        client.update_index(index_of(refs))
        cache = EdgeKnowledgeCache(tmp_path / "edge", client)
        assert cache.refresh() and cache.version == 1
        more = upload(client, 2, start=10)
        blob = kb_server.store.blob_path(more[1]["sha256"])
        blob.write_bytes(b'{"model": "tampered"}')
        client.update_index(index_of([*refs, *more]))
        assert cache.refresh() is False
        assert cache.version == 1 and cache.last_error
        with pytest.raises((ServiceError, RemoteError)):
            client.download_many([(more[1], tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_ll_download_many_falls_back_to_single_files_without_bundles(kb_dir, tmp_path, monkeypatch):
    async def no_bundles(self, request):
        raise json_error(404, "not_found", "no such path")

    monkeypatch.setattr(KnowledgeBaseServer, "bundle", no_bundles)
    with (
        KnowledgeBaseServer(data_dir=str(kb_dir), port=0) as server,
        KnowledgeBaseClient(server.url) as client,
    ):
        refs = upload(client, 5)
        client.update_index(index_of(refs))
        cache = EdgeKnowledgeCache(tmp_path / "edge", client)
        assert cache.refresh(), cache.last_error
    for ref in refs:
        assert json.loads(cache.path(ref).read_bytes()) == {"model": refs.index(ref)}
