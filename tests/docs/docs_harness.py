"""Run the code blocks of README.md and docs/*.md as written (see docs/README-docs-tests.md).

Sybil parses each page and evaluates its blocks; this module adds the page conventions:

* ```python blocks of one page run in order in one namespace, in one worker process per page
  (so pages never share imports, logging set-up or environment), from a temporary directory
  with that directory and the repository on ``sys.path``;
* ```sh / ```bash / ```shell blocks run command by command, ```console blocks run their
  ``$ `` lines (the other lines are output, not checked); ``sedna serve ...`` starts a server
  in the background until the page ends, ``pip install`` and ``make`` are checked, not run;
* ``<!-- file: PATH -->`` on the line before a block writes the block to PATH (in the page's
  directory) instead of running it; ``<!-- fragment: reason -->`` marks a block that is not a
  how-to step, which is not run.

Run as a script (``python docs_harness.py PAGE DIR FD``) it is the worker of one page: it
reads block indexes on stdin and answers one JSON line per block on file descriptor FD.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import tomllib
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON_LANGS = {"python", "py"}
SHELL_LANGS = {"sh", "bash", "shell"}
CONSOLE_LANGS = {"console"}
RUN_LANGS = PYTHON_LANGS | SHELL_LANGS | CONSOLE_LANGS
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>fragment|file)\s*:\s*(?P<value>.*?)\s*-->\s*$")
FENCE_LANG = r"[\w+-]*"
#: the line a server prints on stdout once it accepts connections
READY = re.compile(r"(?P<url>(?:https?|wss?)://(?P<host>[\w.-]+|\[[0-9a-f:]+\]):(?P<port>\d+)\S*)")
END = -1  # the request that ends a page
SERVER_START_S = 120.0
COMMAND_TIMEOUT_S = 300.0
#: servers on free ports unless the page chooses one; later blocks find them through the same
#: variables Sedna's controllers set (exported once the server says where it listens)
SERVER_ENV = {"BIG_MODEL_BIND_PORT": "0", "AGG_BIND_PORT": "0", "KB_BIND_PORT": "0"}
CLIENT_ENV = {
    "inference": lambda host, port, url: {"BIG_MODEL_IP": host, "BIG_MODEL_PORT": port},
    "aggregation": lambda host, port, url: {"AGG_IP": host, "AGG_PORT": port},
    "kb": lambda host, port, url: {"KB_SERVER": url.rstrip("/")},
}


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


# --- parsing -------------------------------------------------------------------------------


@dataclass
class Block:
    page: Path
    index: int  # position among the page's fenced blocks
    line: int  # 1-based line of the opening fence
    lang: str
    source: str
    marker: str | None = None  # "fragment" or "file"
    value: str = ""  # the fragment's reason or the file's path

    @property
    def runs(self) -> bool:
        return self.marker == "file" or (self.marker is None and self.lang in RUN_LANGS)

    @property
    def ident(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def _marker_before(text: str, start: int) -> tuple[str | None, str]:
    line_start = text.rfind("\n", 0, start) + 1  # start of the fence's line
    if line_start == 0:
        return None, ""
    prev_start = text.rfind("\n", 0, line_start - 1) + 1
    m = MARKER.match(text[prev_start : line_start - 1])
    return (m["kind"], m["value"]) if m else (None, "")


def parse_page(path: Path) -> tuple[Any, list[Block]]:
    """Sybil's document of ``path`` (one region per fenced block) and the blocks in order."""
    from sybil import Document, Region
    from sybil.parsers.markdown.lexers import FencedCodeBlockLexer

    blocks: list[Block] = []
    lexer = FencedCodeBlockLexer(language=FENCE_LANG)

    def parser(document: Document) -> Iterable[Region]:
        for region in lexer(document):
            kind, value = _marker_before(document.text, region.start)
            block = Block(
                page=path,
                index=len(blocks),
                line=document.text.count("\n", 0, region.start) + 1,
                lang=region.lexemes["language"].lower(),
                source=str(region.lexemes["source"]),
                marker=kind,
                value=value,
            )
            blocks.append(block)
            region.parsed = region.lexemes["source"]
            region.evaluator = _evaluator(block)
            yield region

    document = Document.parse(str(path), parser)
    return document, blocks


def _evaluator(block: Block) -> Any:
    if block.marker == "file":
        return lambda example: _write_file(block)
    if not block.runs:
        return None
    if block.lang in PYTHON_LANGS:
        return run_python
    return lambda example: run_shell(block)


def run_python(example: Any) -> None:
    """Sybil's Python evaluation, with top-level ``await`` allowed as in ``python -m asyncio``:
    such a block runs to completion in the page's event loop, which lives as long as the page
    (so an async client opened in one block can be used in the next)."""
    import ast
    import importlib
    import inspect

    from sybil.evaluators.python import pad

    importlib.invalidate_caches()  # files written by earlier blocks must be importable
    source = pad(example.parsed, example.line + example.parsed.line_offset)
    code = compile(
        source, example.path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    if code.co_flags & inspect.CO_COROUTINE:
        _PAGE.loop().run_until_complete(eval(code, example.namespace))
    else:
        exec(code, example.namespace)
    example.namespace.pop("__builtins__", None)


def _write_file(block: Block) -> None:
    target = Path(block.value)
    if target.is_absolute() or ".." in target.parts or not block.value:
        raise ValueError(f"{block.ident}: <!-- file: {block.value} --> must be a relative path")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(block.source, encoding="utf-8")


# --- shell ---------------------------------------------------------------------------------


def commands(block: Block) -> Iterator[str]:
    """The commands of a shell or console block: continuation lines joined, comments and
    (for console) output lines dropped."""
    lines = textwrap.dedent(block.source).splitlines()
    # a console block with prompts runs its `$ ` lines; one without any is all commands
    console = block.lang in CONSOLE_LANGS and any(line.startswith("$ ") for line in lines)
    current: list[str] = []
    for raw in lines:
        line = raw.rstrip()
        if not current:
            if console:
                if not line.startswith("$ "):
                    continue  # output
                line = line[2:]
            if not line.strip() or line.lstrip().startswith("#"):
                continue
        if line.endswith("\\"):
            current.append(line[:-1])
            continue
        current.append(line)
        yield " ".join(part.strip() for part in current)
        current = []
    if current:
        yield " ".join(part.strip() for part in current)


def _words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


@dataclass
class _Server:
    command: str
    process: subprocess.Popen[str]
    url: str
    log: Path


@dataclass
class _Page:
    servers: list[_Server] = field(default_factory=list)
    _loop: Any = None

    def loop(self) -> Any:
        import asyncio

        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def close_loop(self) -> None:
        """End the page's event loop as ``asyncio.run`` would: cancel what is left, finish
        async generators and the default executor, close."""
        import asyncio

        if self._loop is None:
            return
        loop, self._loop = self._loop, None
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


_PAGE = _Page()


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_shell(block: Block) -> None:
    for command in commands(block):
        words = _words(command)
        if not words:
            continue
        if words[0] == "pip" or words[:3] == ["python", "-m", "pip"]:
            check_pip(command, block)
        elif words[0] == "make":
            check_make(words, block)
        elif words[:2] == ["sedna", "serve"]:
            start_server(command, words, block)
        else:
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                env=_env(),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT_S,
            )
            sys.stdout.write(f"$ {command}\n{done.stdout}")
            sys.stderr.write(done.stderr)
            if done.returncode != 0:
                raise AssertionError(
                    f"{block.ident}: `{command}` exited {done.returncode}:\n{done.stderr[-3000:]}"
                )


def check_pip(command: str, block: Block) -> None:
    """``pip install`` of the repository's own folders: each exists and is a project, and each
    extra it names is declared (installs are exercised for real by the `venv` tests)."""
    words = _words(command)
    args = words[words.index("install") + 1 :]
    targets = [a for a in args if not a.startswith("-")]
    if not targets:
        raise AssertionError(f"{block.ident}: `{command}` installs nothing")
    for target in targets:
        m = re.fullmatch(r"(?P<path>[^\[]+)(?:\[(?P<extras>[^\]]*)\])?", target)
        path = m["path"] if m else target
        if not path.startswith((".", "/")) and not path.endswith(".whl"):
            raise AssertionError(
                f"{block.ident}: `{command}`: {target!r} is not a local folder or wheel; nothing "
                "is published on PyPI, install from the repository or from `make wheels`"
            )
        if path.endswith(".whl"):  # built by `make wheels`: the name must be one of ours
            dist = Path(path).name.split("-")[0].replace("_", "-").lower()
            if dist not in project_names():
                raise AssertionError(f"{block.ident}: {path}: no project here builds {dist!r}")
            continue
        project = (REPO / path).resolve()
        pyproject = project / "pyproject.toml"
        if not pyproject.is_file():
            raise AssertionError(f"{block.ident}: `{command}`: {path} has no pyproject.toml")
        declared = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
        extras = {e.strip() for e in (m["extras"] or "").split(",") if m and e.strip()}
        unknown = extras - set(declared.get("optional-dependencies", {}))
        if unknown:
            raise AssertionError(f"{block.ident}: {path} declares no extra {sorted(unknown)}")


def project_names() -> set[str]:
    """The distributions this repository builds (the core, each plugin folder)."""
    names = set()
    for pyproject in [REPO / "pyproject.toml", *REPO.glob("*/*/pyproject.toml")]:
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        if "name" in project:
            names.add(project["name"].replace("_", "-").lower())
    return names


def check_make(words: list[str], block: Block) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([\w.-]+):", makefile, re.MULTILINE))
    for target in (w for w in words[1:] if not w.startswith("-") and "=" not in w):
        if target not in targets:
            raise AssertionError(f"{block.ident}: the Makefile has no target {target!r}")


def start_server(command: str, words: list[str], block: Block) -> None:
    kind = words[2] if len(words) > 2 else ""
    log = Path(f".server-{len(_PAGE.servers)}-{kind}.log")
    env = {**_env(), **{k: v for k, v in SERVER_ENV.items() if k not in os.environ}}
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w", encoding="utf-8"),
        text=True,
        start_new_session=True,
    )
    import selectors

    with selectors.DefaultSelector() as sel:
        assert process.stdout is not None
        sel.register(process.stdout, selectors.EVENT_READ)
        while True:
            if not sel.select(timeout=SERVER_START_S):
                _stop(process)
                raise AssertionError(f"{block.ident}: `{command}` printed no address in time")
            line = process.stdout.readline()
            if not line:
                process.wait(timeout=30)
                raise AssertionError(
                    f"{block.ident}: `{command}` exited {process.returncode} before serving:\n"
                    + log.read_text(encoding="utf-8")[-3000:]
                )
            sys.stdout.write(line)
            m = READY.search(line)
            if m:
                break
    _PAGE.servers.append(_Server(command, process, m["url"], log))
    host = m["host"].strip("[]")
    os.environ.update(CLIENT_ENV.get(kind, lambda *a: {})(host, m["port"], m["url"]))


def _stop(process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)  # the user's Ctrl-C
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode


def stop_servers() -> list[str]:
    """Ctrl-C to each server; problems (unclean exit, tracebacks) as messages."""
    problems = []
    for server in reversed(_PAGE.servers):
        rc = _stop(server.process)
        err = server.log.read_text(encoding="utf-8")
        if rc not in (0, 130) or "Traceback" in err:
            problems.append(f"`{server.command}` after Ctrl-C: exit {rc}\n{err[-3000:]}")
    _PAGE.servers.clear()
    return problems


# --- the worker of one page ----------------------------------------------------------------


def _format(exc: BaseException) -> str:
    """The traceback from the page's own line on (the harness's and Sybil's frames dropped)."""
    tb = traceback.TracebackException.from_exception(exc)
    harness = (__file__, os.sep + "sybil" + os.sep)
    frames = [f for f in tb.stack if not any(h in f.filename for h in harness)]
    tb.stack = traceback.StackSummary.from_list(frames[-8:])
    return "".join(tb.format())


def worker(page: Path, workdir: Path, reply_fd: int) -> int:
    os.chdir(workdir)
    sys.path[:0] = [str(workdir), str(REPO)]
    document, blocks = parse_page(page)
    document.namespace["__name__"] = "__main__"
    examples = list(document.examples())  # one per fenced block, in order
    assert len(examples) == len(blocks)
    replies = os.fdopen(reply_fd, "w", encoding="utf-8", buffering=1)
    for request in sys.stdin:
        index = int(request)
        if index < 0:
            try:
                _PAGE.close_loop()
                problems = []
            except BaseException as exc:
                problems = [f"closing the page's event loop: {_format(exc)}"]
            problems += stop_servers()
            replies.write(json.dumps({"index": index, "error": "\n".join(problems) or None}) + "\n")
            break
        print(f"\n===== block {blocks[index].ident} =====", flush=True)
        print(f"\n===== block {blocks[index].ident} =====", file=sys.stderr, flush=True)
        error = None
        try:
            examples[index].evaluate()
        except BaseException as exc:  # a block's failure is reported, not raised here
            error = _format(exc)
        sys.stdout.flush()
        sys.stderr.flush()
        replies.write(json.dumps({"index": index, "error": error}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(worker(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])))
