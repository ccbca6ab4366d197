"""The sedna-core demo: every job on embedded defaults, on 127.0.0.1 only."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: where the demo keeps what it makes, under the working directory, so that the paths it prints
#: still exist afterwards (each section starts from an empty folder of its own)
DEMO_DIR = Path("sedna-demo")


@contextmanager
def demo_workspace(section: str) -> Iterator[Path]:
    """``sedna-demo/<section>``, emptied first and kept afterwards."""
    path = DEMO_DIR / section
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    yield path
