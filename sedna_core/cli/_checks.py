"""Checks and error translations the commands share: what a user typed becomes a one-line
:class:`~sedna_core.cli.main.UsageError` (exit 2) before anything starts, and a database's
error becomes one line instead of SQLAlchemy's paragraph."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sedna_core.cli.main import UsageError

__all__ = ["database_errors", "existing_file", "quiet_logging", "writable_dir"]


def writable_dir(path: str | os.PathLike[str], option: str) -> Path:
    """``path`` created if needed and proven writable (a file is created and removed)."""
    target = Path(path).expanduser()
    try:
        target.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target, prefix=".sedna-write-test-"):
            pass
    except OSError as exc:
        raise UsageError(
            f"{option} {os.fspath(path)!r} is not a writable directory ({exc.strerror})"
        ) from None
    return target


def existing_file(path: str, option: str) -> Path:
    target = Path(path).expanduser()
    if not target.is_file():
        raise UsageError(f"{option} {path!r}: no such file")
    return target


@contextlib.contextmanager
def database_errors(url_option: str = "--db-url") -> Iterator[None]:
    """SQLAlchemy's errors as one line: a URL it cannot use is a usage error (exit 2), a
    database it cannot reach a runtime one (exit 1, via ``ConnectionError``)."""
    from sqlalchemy import exc as sa

    try:
        yield
    except (sa.ArgumentError, sa.NoSuchModuleError) as exc:
        raise UsageError(
            f"{url_option}: not a database URL this installation can use ({_first_line(exc)}); "
            "e.g. sqlite:///kb.db or postgresql+psycopg://user@host/db"
        ) from None
    except sa.OperationalError as exc:
        raise ConnectionError(f"cannot use the database: {_first_line(exc.orig or exc)}") from None
    except sa.SQLAlchemyError as exc:
        raise ConnectionError(f"database error: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def quiet_logging() -> None:
    """Logs for a client command: WARNING and above unless ``LOG_LEVEL`` asks for more (its
    retries and progress are noise next to the one line the command prints)."""
    from sedna_core.log import configure_logging

    configure_logging(level=os.environ.get("LOG_LEVEL") or "WARNING")
