"""One test item per runnable block of README.md and docs/*.md, plus one per page that stops the
page's servers and worker and checks they ended cleanly; the tally in the terminal summary.

Blocks of a page run in order in the page's worker process (``docs_harness.py``); selecting one
block (``-k 'runtime.md:149'``) first runs the blocks before it on that page, since it may use
what they defined.
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import docs_harness

END = docs_harness.END
BLOCK_TIMEOUT_S = float(os.environ.get("SEDNA_DOCS_BLOCK_TIMEOUT", "280"))
#: what a page's process must never print (sync close mixed with async calls, leaked sessions)
UNCLEAN = ("Unclosed client session", "Unclosed connector", "Event loop is closed", "Traceback")


class PageRun:
    """The worker process of one page and what its blocks did."""

    def __init__(self, page: Path, root: Path) -> None:
        self.page = page
        _, self.blocks = docs_harness.parse_page(page)
        self.dir = root / re.sub(r"\W", "_", str(page.relative_to(docs_harness.REPO)))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.out = self.dir.parent / f"{self.dir.name}.stdout.log"
        self.err = self.dir.parent / f"{self.dir.name}.stderr.log"
        self.results: dict[int, str | None] = {}
        self.process: subprocess.Popen[bytes] | None = None
        self.replies: int | None = None
        self.closed: str | None = None

    def _start(self) -> None:
        read, write = os.pipe()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
        env.update(PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
        self.process = subprocess.Popen(
            [sys.executable, docs_harness.__file__, str(self.page), str(self.dir), str(write)],
            stdin=subprocess.PIPE,
            stdout=self.out.open("wb"),
            stderr=self.err.open("wb"),
            pass_fds=(write,),
            cwd=self.dir,
            env=env,
        )
        os.close(write)
        self.replies = read

    def _ask(self, index: int) -> str | None:
        if self.process is None:
            self._start()
        assert self.process is not None and self.process.stdin is not None
        assert self.replies is not None
        if self.process.poll() is not None:
            return f"the page's process had already exited ({self.process.returncode})"
        err_at = self.err.stat().st_size
        self.process.stdin.write(f"{index}\n".encode())
        self.process.stdin.flush()
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.replies], [], [], BLOCK_TIMEOUT_S)
            if not ready:
                self.process.kill()
                return f"no answer within {BLOCK_TIMEOUT_S:.0f} s" + self._stderr_since(err_at)
            chunk = os.read(self.replies, 65536)
            if not chunk:
                self.process.wait()
                return f"the page's process died ({self.process.returncode})" + self._stderr_since(
                    err_at
                )
            line += chunk
        error: str | None = json.loads(line)["error"]
        if error is not None:
            error += self._stderr_since(err_at)
        return error

    def _stderr_since(self, offset: int) -> str:
        with self.err.open("rb") as fh:
            fh.seek(offset)
            text = fh.read().decode(errors="replace").strip()
        return f"\n--- stderr of the block ---\n{text[-4000:]}" if text else ""

    def run(self, index: int) -> str | None:
        """Run the page's blocks up to ``index`` (earlier ones once, silently) and return the
        error of block ``index``, if any."""
        for block in self.blocks[: index + 1]:
            if block.runs and block.index not in self.results:
                self.results[block.index] = self._ask(block.index)
        if index not in self.results:
            return f"{self.page.name} changed since the tests were collected: run them again"
        return self.results[index]

    def close(self) -> str | None:
        if self.closed is not None:
            return self.closed or None
        problems = []
        if self.process is not None and self.process.poll() is None:
            answer = self._ask(END)
            if answer:
                problems.append(answer)
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                problems.append("the page's process did not exit after its last block")
        if self.process is not None:
            text = self.err.read_text(errors="replace")
            found = [u for u in UNCLEAN if u in text]
            # a block that failed already reported its traceback: count only fresh problems
            if found and not any(self.results.values()):
                problems.append(f"the page's process printed {found}:\n{text[-4000:]}")
        if self.replies is not None:
            os.close(self.replies)
            self.replies = None
        self.closed = "\n".join(problems)
        return self.closed or None


class DocsRuns:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pages: dict[Path, PageRun] = {}

    def get(self, page: Path) -> PageRun:
        if page not in self.pages:
            self.pages[page] = PageRun(page, self.root)
        return self.pages[page]


@pytest.fixture(scope="session")
def docs_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsRuns]:
    runs = DocsRuns(tmp_path_factory.mktemp("docs"))
    yield runs
    for run in runs.pages.values():
        if run.process is not None and run.process.poll() is None:
            run.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "doc_item" not in metafunc.fixturenames:
        return
    params, ids = [], []
    for page in docs_harness.pages():
        _, blocks = docs_harness.parse_page(page)
        name = str(page.relative_to(docs_harness.REPO))
        for block in blocks:
            if block.runs:
                params.append((page, block.index))
                ids.append(block.ident)
        params.append((page, END))
        ids.append(f"{name}:end")
    metafunc.parametrize("doc_item", params, ids=ids)
    metafunc.config.stash[_TALLY] = True


_TALLY = pytest.StashKey[bool]()


def tally() -> dict[str, int]:
    counts = {"run": 0, "files": 0, "fragments": 0, "other": 0}
    for page in docs_harness.pages():
        for block in docs_harness.parse_page(page)[1]:
            if block.marker == "fragment":
                counts["fragments"] += 1
            elif block.marker == "file":
                counts["files"] += 1
            elif block.runs:
                counts["run"] += 1
            else:
                counts["other"] += 1
    return counts


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not terminalreporter.config.stash.get(_TALLY, False):
        return
    c = tally()
    stats = terminalreporter.stats
    failed = [
        r.nodeid.split("[", 1)[1].rstrip("]")
        for r in stats.get("failed", [])
        if "test_docs_blocks" in r.nodeid and "[" in r.nodeid
    ]
    terminalreporter.write_sep("-", "docs code blocks")
    terminalreporter.write_line(
        f"{c['run']} run as written, {c['files']} written as files, {c['fragments']} fragments "
        f"(with reasons), {c['other']} not code (output, JSON, YAML, diagrams)"
    )
    if failed:
        terminalreporter.write_line(f"failing: {', '.join(failed)}")
