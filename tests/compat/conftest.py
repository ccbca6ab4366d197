"""Helpers of the compatibility tests: a stub of Sedna's local controller, and KubeEdge Sedna's
own example programs run unchanged as processes, with the environment Sedna's controllers give
their pods.

The programs are read from ``SEDNA_EXAMPLES`` (default ``../shared/peers/sedna-examples``), never
copied here. What a test substitutes is what Sedna's examples leave to the user: the model
class (``standins/<same folder>/interface.py``, found first on ``sys.path``), the data and the
controller's environment. Without the examples the tests skip with the reason, and fail under
``SEDNA_REQUIRE_PEERS=1`` (CI).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = Path(os.environ.get("SEDNA_EXAMPLES", REPO.parent / "shared/peers/sedna-examples"))
STANDINS = Path(__file__).parent / "standins"
TIMEOUT = 180.0
#: what a stand-in model prints (stderr) each time it predicts: tests follow endless programs
#: (a video loop, a file tail) by counting these instead of sleeping
PREDICTED = "sedna-standin: predicted"

# Runs a program as `python program.py` would, except that the stand-in folder comes first on
# sys.path (python puts the program's own folder, with Sedna's interface.py, first).
_LAUNCH = (
    "import runpy, sys; sys.path.insert(0, sys.argv[1]); del sys.argv[:2]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def example(program: str) -> Path:
    """The path of one of Sedna's example programs (``<paradigm>/<example>/.../x.py``)."""
    return EXAMPLES / program


def _command(program: str) -> list[str]:
    path = example(program)
    if not path.is_file():
        pytest.fail(f"Sedna's example program {path} is missing (SEDNA_EXAMPLES={EXAMPLES})")
    standin = STANDINS / Path(program).parent
    return [sys.executable, "-c", _LAUNCH, str(standin), str(path)]


@pytest.fixture(autouse=True)
def _sedna_examples(request: pytest.FixtureRequest) -> None:
    """Tests using ``pods`` need Sedna's examples: skip without them (fail in CI)."""
    if "pods" not in request.fixturenames or EXAMPLES.is_dir():
        return
    reason = f"Sedna's example programs not found at {EXAMPLES} (set SEDNA_EXAMPLES)"
    if os.environ.get("SEDNA_REQUIRE_PEERS") == "1":
        pytest.fail(f"SEDNA_REQUIRE_PEERS=1 but {reason}")
    pytest.skip(reason)


class LCStub:
    """Sedna's local controller on 127.0.0.1: records ``POST /sedna/workers/{w}/info``."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self._cond = threading.Condition()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.strip("/").split("/")
                ok = len(parts) == 4 and parts[:2] == ["sedna", "workers"] and parts[3] == "info"
                if ok:
                    with stub._cond:
                        stub.messages.append((parts[2], json.loads(body)))
                        stub._cond.notify_all()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def bodies(self, worker: str | None = None) -> list[dict[str, Any]]:
        with self._cond:
            return [m for w, m in self.messages if worker is None or w == worker]

    def wait_for(self, pred: Callable[[list[dict[str, Any]]], bool], timeout: float = 30) -> None:
        with self._cond:
            ok = self._cond.wait_for(lambda: pred([m for _, m in self.messages]), timeout)
        assert ok, f"the local controller did not get the expected reports: {self.messages}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def lc() -> Iterator[LCStub]:
    stub = LCStub()
    yield stub
    stub.close()


def pod_env(**env: Any) -> dict[str, str]:
    """The parent environment without Sedna/sedna-core variables, plus ``env`` (as strings)."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SEDNA_", "HEM_", "AGG_", "BIG_MODEL_", "MODEL_", "KB_", "PYTHON"))
    }
    base.update(SEDNA_LOG_FORMAT="json", LOG_LEVEL="INFO", PYTHONUNBUFFERED="1")
    base.update({k: str(v) for k, v in env.items()})
    return base


def run(program: str, env: Mapping[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one of Sedna's example programs to completion."""
    proc = subprocess.run(
        _command(program), env=dict(env), cwd=cwd, capture_output=True, text=True,
        timeout=TIMEOUT,
    )  # fmt: skip
    assert proc.returncode == 0, f"{program} failed:\n{proc.stdout}\n{proc.stderr[-6000:]}"
    return proc


def spawn(program: str, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[str]:
    """Start one of Sedna's example programs without waiting (stdout and stderr together)."""
    return subprocess.Popen(
        _command(program), env=dict(env), cwd=cwd,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def run_until_predicted(program: str, env: Mapping[str, str], cwd: Path, count: int) -> str:
    """Run a program that never ends by itself (Sedna's inference workers loop over a video or
    tail a file) until its stand-in model has predicted ``count`` times, then interrupt it
    (SIGINT: Python unwinds and flushes its files); its output."""
    proc = spawn(program, env, cwd)
    assert proc.stdout is not None
    lines: list[str] = []
    seen = 0
    timer = threading.Timer(TIMEOUT, proc.kill)  # a hung program fails the test, not CI
    timer.start()
    try:
        for line in proc.stdout:
            lines.append(line)
            if PREDICTED in line:
                seen += 1
                if seen == count:
                    proc.send_signal(signal.SIGINT)
                    break
        rest, _ = proc.communicate(timeout=60)
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines) + (rest or "")
    assert seen == count, f"{program} predicted {seen} of {count} times:\n{out[-6000:]}"
    return out


class Server:
    """A server program in its own process; :attr:`url` once it logged "service listening"."""

    def __init__(self, program: str, env: Mapping[str, str], cwd: Path) -> None:
        self.program = program
        self.proc = spawn(program, env, cwd)
        self.lines: list[str] = []
        self._urls: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            url = self._urls.get(timeout=TIMEOUT)
        except queue.Empty:
            url = None
        if url is None:
            self.stop()
            raise AssertionError(f"{program} did not start:\n" + "".join(self.lines[-60:]))
        self.url = url
        self.port = int(url.rsplit(":", 1)[1])

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "service listening":
                self._urls.put(event["url"])
        self._urls.put(None)

    def wait(self, timeout: float = TIMEOUT) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def output(self) -> str:
        return "".join(self.lines)


class Pods:
    """What the tests use: ``pods.env(...)``, ``pods.run(program, env, cwd)``,
    ``pods.server(program, env, cwd)``."""

    env = staticmethod(pod_env)
    run = staticmethod(run)
    spawn = staticmethod(spawn)
    run_until_predicted = staticmethod(run_until_predicted)
    server = Server


@pytest.fixture
def pods() -> Iterator[Pods]:
    started: list[Server] = []

    class _Tracked(Pods):
        @staticmethod
        def server(program: str, env: Mapping[str, str], cwd: Path) -> Server:  # type: ignore[override]
            srv = Server(program, env, cwd)
            started.append(srv)
            return srv

    yield _Tracked()
    for srv in started:
        srv.stop()
