"""The command line as a user meets it: one-line errors with documented exit codes, never a
traceback; Ctrl-C and `| head`; logs never on stdout; help for every option.

Each test runs the installed `sedna` command in a subprocess, from a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

SEDNA = os.path.join(os.path.dirname(sys.executable), "sedna")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEDNA_", "LOG_"))}
    env.update(extra)
    return env


def sedna(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SEDNA, *args],
        cwd=cwd,
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def one_line_error(done: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The process exited ``code`` with exactly one line on stderr containing ``words``."""
    err = done.stderr.strip()
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, done.stderr
    assert done.returncode == code, (done.returncode, done.stderr)
    assert len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A user's project folder: ``mypkg/models.py`` with a big model."""
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "models.py").write_text(
        textwrap.dedent(
            """
            class BigModel:
                def predict(self, data, **kwargs):
                    return [sum(row) for row in data]

                def load(self, model_url=""):
                    self.loaded = model_url
            """
        )
    )
    return tmp_path


# --- usage and configuration errors: exit 2 ------------------------------------------------


def test_unknown_attribute_in_module_attr_suggests_the_name(app: Path) -> None:
    done = sedna("serve", "inference", "--estimator", "mypkg.models:BigModle", cwd=app)
    one_line_error(done, 2, "has no attribute 'BigModle'", "did you mean 'BigModel'")


def test_estimator_imports_from_the_working_directory_or_app_dir(
    app: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    done = sedna("serve", "inference", "--estimator", "mypkg.models:Nope", cwd=elsewhere)
    one_line_error(done, 2, "no module named 'mypkg'", "--app-dir")
    # with --app-dir the module is found (and the attribute error proves it was imported)
    done = sedna(
        "serve",
        "inference",
        "--estimator",
        "mypkg.models:Nope",
        "--app-dir",
        str(app),
        cwd=elsewhere,
    )
    one_line_error(done, 2, "mypkg.models has no attribute 'Nope'")


def test_input_shape_must_be_sizes(app: Path) -> None:
    done = sedna(
        "serve",
        "inference",
        "--estimator",
        "mypkg.models:BigModel",
        "--input-shape",
        "abc",
        cwd=app,
    )
    one_line_error(done, 2, "--input-shape 'abc'", "3,32,32")


def test_missing_model_file(app: Path) -> None:
    done = sedna(
        "serve",
        "inference",
        "--estimator",
        "mypkg.models:BigModel",
        "--model",
        "gone.skops",
        cwd=app,
    )
    one_line_error(done, 2, "--model 'gone.skops'", "no such file")


def test_missing_initial_weights_file(tmp_path: Path) -> None:
    done = sedna("serve", "aggregation", "--initial-weights", "gone.npz", cwd=tmp_path)
    one_line_error(done, 2, "--initial-weights 'gone.npz'", "no such file")


@pytest.mark.parametrize("url", ["nosuchdialect://x", "not a url"])
def test_bad_db_url(tmp_path: Path, url: str) -> None:
    done = sedna("kb", "upgrade", "--db-url", url, cwd=tmp_path)
    one_line_error(done, 2, "database URL")
    done = sedna("serve", "kb", "--db-url", url, "--port", "0", cwd=tmp_path)
    one_line_error(done, 2, "database URL")


def test_unwritable_data_dir(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    done = sedna("serve", "kb", "--data-dir", str(blocker / "kb"), "--port", "0", cwd=tmp_path)
    one_line_error(done, 2, "--data-dir", "not a writable directory")
    done = sedna("kb", "upgrade", "--data-dir", str(blocker / "kb"), cwd=tmp_path)
    one_line_error(done, 2, "--data-dir", "not a writable directory")


def test_rule_typo_gets_did_you_mean(tmp_path: Path) -> None:
    done = sedna(
        "incremental",
        "run",
        "--samples",
        "1200",
        "--bootstrap",
        "200",
        "--rule",
        "acuracy_delta > 0",
        "--no-progress",
        cwd=tmp_path,
    )
    one_line_error(done, 2, "'acuracy'", "did you mean 'accuracy'")


def test_missing_backend_plugin_says_which_and_how(app: Path) -> None:
    (app / "mypkg" / "sk.py").write_text("from sklearn.svm import SVC\nmodel = SVC()\n")
    env = _env(SEDNA_DISABLE_PLUGINS="sedna-plugin-sklearn", LOG_LEVEL="WARNING")
    done = sedna("serve", "inference", "--estimator", "mypkg.sk:model", cwd=app, env=env)
    one_line_error(done, 1, "sedna-plugin-sklearn", "pip install ./sedna_plugins/sklearn")
    env["BACKEND_TYPE"] = "SKLEARN"
    done = sedna("serve", "inference", "--estimator", "mypkg.sk:model", cwd=app, env=env)
    one_line_error(done, 2, "sedna-plugin-sklearn")


def test_backend_type_naming_a_missing_backend_says_how_to_install(sedna_pm: Any) -> None:
    from sklearn.svm import SVC

    from sedna_core.backends import set_backend
    from sedna_core.errors import UnknownAlgorithmError

    with pytest.raises(UnknownAlgorithmError, match=r"pip install \./sedna_plugins/sklearn"):
        set_backend(SVC(), "SKLEARN", plugin_manager=sedna_pm)


# --- runtime failures: exit 1 ----------------------------------------------------------------


def test_kb_status_against_a_kb_that_is_not_running(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    done = sedna("kb", "status", "--url", url, cwd=tmp_path)
    one_line_error(done, 1, "sedna kb status", url)


def test_incremental_status_finds_what_run_wrote(tmp_path: Path) -> None:
    done = sedna("incremental", "status", cwd=tmp_path)
    one_line_error(done, 1, "no workspace", "sedna incremental run")
    run = sedna(
        "incremental",
        "run",
        "--samples",
        "1500",
        "--bootstrap",
        "300",
        "--window",
        "300",
        "--no-progress",
        cwd=tmp_path,
        timeout=240,
    )
    assert run.returncode == 0, run.stderr
    windows = [line for line in run.stdout.splitlines() if line.startswith("samples ")]
    assert len(windows) >= 3
    assert "sedna-incremental/sedna" in run.stdout
    assert run.stderr.strip() == ""  # the job's details only at LOG_LEVEL=INFO/DEBUG
    status = sedna("incremental", "status", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("model sedna: serving v")


# --- Ctrl-C, `| head`, version, help ---------------------------------------------------------


def test_ctrl_c_exits_130_without_a_traceback(app: Path) -> None:
    proc = subprocess.Popen(
        [SEDNA, "serve", "inference", "--estimator", "mypkg.models:BigModel", "--port", "0"],
        cwd=app,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the server says where it listens once it does
    assert line.startswith("serving http://127.0.0.1:"), line
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    done = subprocess.run(
        f"{SEDNA} kb schema | head -c 10",
        shell=True,
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.stdout == '{\n  "$schem'[:10]
    assert "BrokenPipeError" not in done.stderr and "Traceback" not in done.stderr


def test_version_alias_and_exit_codes_in_help(tmp_path: Path) -> None:
    short, long = sedna("-V", cwd=tmp_path), sedna("--version", cwd=tmp_path)
    assert short.returncode == long.returncode == 0
    assert short.stdout.splitlines()[0] == long.stdout.splitlines()[0]
    assert short.stdout.startswith("sedna-core ")
    help_text = sedna("--help", cwd=tmp_path).stdout
    for code in ("0 ", "1 ", "2 ", "130", "141"):
        assert f"  {code}" in help_text


def _parsers(parser: argparse.ArgumentParser, path: str = "sedna") -> list[tuple[str, Any]]:
    found = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _parsers(sub, f"{path} {name}")
    return found


def test_every_option_has_help() -> None:
    from sedna_core.cli.main import build_parser

    missing = [
        f"{path} {'/'.join(action.option_strings) or action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction | argparse._HelpAction)
        and not action.help
    ]
    assert not missing, missing


# --- logs ------------------------------------------------------------------------------------

LIBRARY_FIRST = """
from sklearn.linear_model import LogisticRegression
from sedna_core.backends import set_backend
from sedna_core.plugins import create_algorithm, get_plugin_manager
get_plugin_manager().list_plugins()
create_algorithm("hard_example_mining", "Confidence")
set_backend(LogisticRegression())
from sedna_core.log import get_logger
get_logger("probe").info("an info line")
get_logger("probe").warning("a warning line")
print("RESULT")
"""


@pytest.mark.parametrize("level", ["DEBUG", "WARNING"])
def test_library_logs_go_to_stderr_and_follow_log_level(tmp_path: Path, level: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIBRARY_FIRST],
        cwd=tmp_path,
        env=_env(LOG_LEVEL=level, SEDNA_LOG_FORMAT="json"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "RESULT\n"  # nothing logged to stdout
    assert "a warning line" in done.stderr
    assert ("an info line" in done.stderr) == (level == "DEBUG")


def test_incremental_run_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    import pty
    import threading

    leader, follower = pty.openpty()  # stderr is a terminal, stdout a pipe
    drawn = bytearray()

    def drain() -> None:  # a terminal's buffer is small: read while the bar is drawn
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other side is closed and drained
                return
            if not chunk:
                return
            drawn.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        proc = subprocess.Popen(
            [
                SEDNA,
                "incremental",
                "run",
                "--samples",
                "1200",
                "--bootstrap",
                "300",
                "--window",
                "300",
            ],
            cwd=tmp_path,
            env=_env(COLUMNS="100"),
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
        )
        out, _ = proc.communicate(timeout=240)
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    assert proc.returncode == 0
    assert [line for line in out.splitlines() if line.startswith("samples ")]
    assert b"samples" in drawn and b"Traceback" not in drawn  # the bar's label and counts
