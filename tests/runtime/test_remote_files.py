"""Remote files against real servers on loopback: moto's S3 server and an aiohttp http server."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from sedna_core.artifacts import fetch, is_remote, open_url, s3_storage_options, upload
from sedna_core.errors import ArtifactError

PAYLOAD = bytes(range(256)) * 5000  # 1.28 MB: more than one transfer block


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Sedna's variables pointing at the loopback server; returns a fresh bucket name."""
    import boto3

    monkeypatch.setenv("S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("ACCESS_KEY_ID", "sedna-test")
    monkeypatch.setenv("SECRET_ACCESS_KEY", "sedna-secret")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never probe off loopback
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        aws_access_key_id="sedna-test",
        aws_secret_access_key="sedna-secret",
        region_name="us-east-1",
    )
    bucket = f"models-{threading.get_ident() % 10_000}-{len(client.list_buckets()['Buckets'])}"
    client.create_bucket(Bucket=bucket)
    return bucket


class HttpServer:
    """A real aiohttp server on 127.0.0.1 (port 0) in its own thread: GET/HEAD with ranges
    from a directory, PUT to store uploads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    async def _put(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        (self.root / name).write_bytes(await request.read())
        return web.Response(status=201)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        app = web.Application(client_max_size=1 << 30)
        app.router.add_put("/files/{name}", self._put)
        app.router.add_static("/files", self.root)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.ready.set()
        self.loop.run_forever()

    def start(self) -> str:
        self.thread.start()
        self.ready.wait()
        return f"http://127.0.0.1:{self.port}/files"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join()


@pytest.fixture(scope="module")
def http_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root = tmp_path_factory.mktemp("served")
    (root / "model.bin").write_bytes(PAYLOAD)
    server = HttpServer(root)
    base = server.start()
    yield base, root
    server.stop()


def test_local_paths_and_file_urls(tmp_path: Path) -> None:
    src = tmp_path / "src" / "model.pt"
    src.parent.mkdir()
    src.write_bytes(PAYLOAD)
    out = fetch(str(src), tmp_path / "a.pt")
    assert out.read_bytes() == PAYLOAD
    dest_dir = tmp_path / "dest"
    dest_dir.mkdir()
    assert fetch(src.as_uri(), dest_dir) == dest_dir / "model.pt"
    assert upload(src, (tmp_path / "up").as_uri() + "/") == (tmp_path / "up").as_uri() + "/model.pt"
    assert (tmp_path / "up" / "model.pt").read_bytes() == PAYLOAD
    with open_url(src.as_uri()) as fh:
        assert fh.read(4) == PAYLOAD[:4]
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "f.txt").write_text("hi")
    assert (fetch(tree, tmp_path / "copy") / "sub" / "f.txt").read_text() == "hi"
    with pytest.raises(ArtifactError, match="not found"):
        fetch(tmp_path / "missing.pt", tmp_path / "x.pt")
    with pytest.raises(ArtifactError, match="not a file"):
        upload(tmp_path / "missing.pt", str(tmp_path / "y"))
    with pytest.raises(ArtifactError, match="not found"), open_url(tmp_path / "missing.pt"):
        pass
    assert not list(tmp_path.glob("**/*.part-*"))


@pytest.mark.parametrize("url", ["gs://b/x", "ftp://h/x", "memory://x", "simplecache::s3://b/x"])
def test_unsupported_schemes(url: str, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"not supported|unsupported"):
        fetch(url, tmp_path / "x")


def test_is_remote() -> None:
    assert is_remote("s3://b/k") and is_remote("https://h/x") and is_remote("http://h/x")
    assert not is_remote("/models/x.pb") and not is_remote("file:///x") and not is_remote("C:\\m")


def test_s3_options_follow_sedna_variables() -> None:
    env = {"S3_ENDPOINT_URL": "minio.local:9000", "ACCESS_KEY_ID": "k", "SECRET_ACCESS_KEY": "s"}
    assert s3_storage_options(env) == {
        "endpoint_url": "https://minio.local:9000",
        "key": "k",
        "secret": "s",
    }
    assert s3_storage_options({"S3_ENDPOINT_URL": "http://m:9000"}) == {
        "endpoint_url": "http://m:9000"
    }
    assert s3_storage_options({}) == {}


def test_s3_round_trip(s3: str, tmp_path: Path) -> None:
    src = tmp_path / "model.pb"
    src.write_bytes(PAYLOAD)
    url = upload(src, f"s3://{s3}/models/")
    assert url == f"s3://{s3}/models/model.pb"
    upload(src, f"s3://{s3}/models/extra/second.pb")
    got = fetch(url, tmp_path / "back.pb")
    assert got.read_bytes() == PAYLOAD
    with open_url(url) as fh:
        assert fh.read() == PAYLOAD
    with open_url(f"s3://{s3}/notes.txt", "wb") as fh:
        fh.write(b"written through open_url")
    assert fetch(f"s3://{s3}/notes.txt", tmp_path).read_bytes() == b"written through open_url"
    # a prefix is a folder: mirrored like Sedna's FileOps.download
    mirrored = fetch(f"s3://{s3}/models", tmp_path / "mirror")
    assert (mirrored / "model.pb").read_bytes() == PAYLOAD
    assert (mirrored / "extra" / "second.pb").read_bytes() == PAYLOAD
    with pytest.raises(ArtifactError, match="not found"):
        fetch(f"s3://{s3}/models/absent.pb", tmp_path / "absent.pb")
    assert not (tmp_path / "absent.pb").exists()


def test_s3_variables_are_read_at_call_time(
    s3: str, http_files: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "m.bin"
    src.write_bytes(b"x")
    upload(src, f"s3://{s3}/m.bin")
    assert fetch(f"s3://{s3}/m.bin", tmp_path / "a.bin").read_bytes() == b"x"
    # the same URL now goes to another endpoint (the plain http server, which has no bucket)
    monkeypatch.setenv("S3_ENDPOINT_URL", http_files[0].rsplit("/", 1)[0])
    with pytest.raises(ArtifactError, match="cannot fetch"):
        fetch(f"s3://{s3}/m.bin", tmp_path / "b.bin")
    assert not (tmp_path / "b.bin").exists()


def test_http_fetch_upload_and_errors(http_files: tuple[str, Path], tmp_path: Path) -> None:
    base, root = http_files
    got = fetch(f"{base}/model.bin", tmp_path)
    assert got == tmp_path / "model.bin" and got.read_bytes() == PAYLOAD
    with open_url(f"{base}/model.bin") as fh:
        assert fh.read(10) == PAYLOAD[:10]
    src = tmp_path / "up.bin"
    src.write_bytes(b"uploaded over http")
    assert upload(src, f"{base}/") == f"{base}/up.bin"
    assert (root / "up.bin").read_bytes() == b"uploaded over http"
    with pytest.raises(ArtifactError, match="not found"):
        fetch(f"{base}/absent.bin", tmp_path / "absent.bin")
    assert not (tmp_path / "absent.bin").exists() and not list(tmp_path.glob(".*part*"))
