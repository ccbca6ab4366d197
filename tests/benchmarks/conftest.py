"""Benchmarks run in-process here: their ``main`` quiets logging for the whole process
(``configure_logging("WARNING", force=True)``), which would silence the log lines later tests
of the session read. Each test here gets the logging set-up back as it found it."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

import sedna_core.log as sedna_log


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configured = sedna_log._configured
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)
    sedna_log._configured = configured
