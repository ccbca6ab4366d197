"""configure_logging: JSON vs console, LOG_LEVEL, bound and context fields, stdlib records."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

import sedna_core.log as sedna_log
from sedna_core.errors import ConfigError
from sedna_core.log import configure_logging, get_logger, log_context


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    structlog.reset_defaults()
    sedna_log._configured = False


def lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_json_lines_with_bound_fields_and_context() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "json", force=True, stream=buf)
    log = get_logger("sedna.test").bind(job="helmet", round=3, peer="edge-1")
    with log_context(request_id="r-1"):
        log.info("round closed", updates=2)
    log.debug("hidden")
    (rec,) = lines(buf)
    assert rec["event"] == "round closed" and rec["level"] == "info"
    assert rec["job"] == "helmet" and rec["round"] == 3 and rec["peer"] == "edge-1"
    assert rec["request_id"] == "r-1" and rec["logger"] == "sedna.test" and rec["updates"] == 2
    assert rec["timestamp"].endswith("Z")


def test_console_format_is_not_json() -> None:
    buf = io.StringIO()
    configure_logging("DEBUG", "console", force=True, stream=buf)
    get_logger("c").debug("hello", job="j")
    text = buf.getvalue()
    assert "hello" in text and "job=j" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_auto_picks_json_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDNA_LOG_FORMAT", "auto")
    buf = io.StringIO()
    configure_logging("INFO", force=True, stream=buf)
    get_logger().info("x")
    assert lines(buf)[0]["event"] == "x"


def test_env_switch_and_log_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEDNA_LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "warning")
    buf = io.StringIO()
    configure_logging(force=True, stream=buf)
    log = get_logger("lvl")
    log.info("no")
    log.warning("yes")
    assert [r["event"] for r in lines(buf)] == ["yes"]


def test_configure_once_unless_forced() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("INFO", "json", force=True, stream=first)
    configure_logging("DEBUG", "json", stream=second)  # no-op: already configured
    get_logger().debug("dropped")
    get_logger().info("kept")
    assert [r["event"] for r in lines(first)] == ["kept"] and second.getvalue() == ""


@pytest.mark.parametrize(("env", "value"), [("LOG_LEVEL", "LOUD"), ("SEDNA_LOG_FORMAT", "xml")])
def test_bad_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError, match=env) as info:
        configure_logging(force=True, stream=io.StringIO())
    assert info.value.variable == env


def test_exceptions_rendered_in_json() -> None:
    buf = io.StringIO()
    configure_logging("INFO", "json", force=True, stream=buf)
    try:
        raise ValueError("bad thing")
    except ValueError:
        get_logger("e").exception("failed")
    rec = lines(buf)[0]
    assert "ValueError: bad thing" in rec["exception"]


def test_stdlib_records_rendered_alike_when_root_is_free() -> None:
    root = logging.getLogger()
    saved = list(root.handlers)
    for h in saved:  # pytest's capture handler
        root.removeHandler(h)
    try:
        buf = io.StringIO()
        configure_logging("INFO", "json", force=True, stream=buf)
        with log_context(request_id="abc"):
            logging.getLogger("aiohttp.server").error("Error handling request")
        rec = lines(buf)[0]
        assert rec["event"] == "Error handling request" and rec["level"] == "error"
        assert rec["logger"] == "aiohttp.server" and rec["request_id"] == "abc"
    finally:
        for h in saved:
            root.addHandler(h)
