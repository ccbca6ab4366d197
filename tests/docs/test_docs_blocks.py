"""Every code block of README.md and docs/*.md runs as written (docs/README-docs-tests.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import docs_harness  # type: ignore[import-not-found]  # tests/docs is put on sys.path by conftest
import pytest


def test_block(doc_item: tuple[Path, int], docs_runs: Any) -> None:
    page, index = doc_item
    run = docs_runs.get(page)
    if index == docs_harness.END:
        problem = run.close()
        if problem:
            pytest.fail(f"{page.name} after its last block: {problem}", pytrace=False)
        return
    error = run.run(index)
    if error:
        pytest.fail(f"{run.blocks[index].ident}:\n{error}", pytrace=False)


def test_markers_are_well_formed() -> None:
    """A marker sits on the line right before a fence; a fragment says why; a file is relative."""
    problems = []
    fence = re.compile(r"^\s*(```|~~~)")
    for page in docs_harness.pages():
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            if not re.match(r"\s*<!--\s*(fragment|file)\b", line):
                continue
            where = f"{page.relative_to(docs_harness.REPO)}:{number}"
            m = docs_harness.MARKER.match(line)
            if m is None:
                problems.append(
                    f"{where}: write `<!-- fragment: reason -->` or `<!-- file: PATH -->`"
                )
                continue
            if number >= len(lines) or not fence.match(lines[number]):
                problems.append(f"{where}: the marker must be the line right before a code block")
            if m["kind"] == "fragment" and len(m["value"]) < 10:
                problems.append(f"{where}: a fragment needs a one-line reason")
            if m["kind"] == "file" and (m["value"].startswith("/") or ".." in m["value"]):
                problems.append(f"{where}: a file marker names a path relative to the page's dir")
    assert not problems, "\n".join(problems)


def test_shell_commands_split_as_a_reader_reads_them() -> None:
    block = docs_harness.Block(
        page=docs_harness.REPO / "README.md",
        index=0,
        line=1,
        lang="console",
        source="$ sedna kb import-sedna a b \\\n    --trusted\nimported 3 tasks\n$ sedna -V  # x\n",
    )
    assert list(docs_harness.commands(block)) == [
        "sedna kb import-sedna a b --trusted",
        "sedna -V  # x",
    ]
