"""`sedna plugins list`, `sedna --version`, and the promise never to import a framework for them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from sedna_core.algorithms import BaseHardExampleMiner
from sedna_core.cli.main import main
from sedna_core.plugins import SednaPluginManager, hookimpl

BACKENDS = {
    "sedna-plugin-keras",
    "sedna-plugin-torch",
    "sedna-plugin-xgboost",
    "sedna-plugin-sklearn",
}
FRAMEWORKS = ("torch", "tensorflow", "keras", "xgboost")


class Never(BaseHardExampleMiner):
    name = "Never"

    def mine(self, results):
        return np.zeros(len(results), dtype=bool)


class Listed:
    @hookimpl
    def sedna_register_hard_example_miners(self):
        return [Never]


@pytest.fixture(autouse=True)
def _keep_logging_config(monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process CLI calls would configure structlog to write to pytest's captured stderr,
    # which is closed after the test; later tests' log lines would then fail.
    import sedna_core.log

    monkeypatch.setattr(sedna_core.log, "_configured", True)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SEDNA_")}


def test_table_and_json(sedna_pm: SednaPluginManager, capsys: pytest.CaptureFixture[str]) -> None:
    sedna_pm.register(Listed(), name="listed")
    assert main(["plugins", "list"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].split() == [
        "PLUGIN",
        "VERSION",
        "STATUS",
        "ENTRY",
        "POINT",
        "ALGORITHMS",
    ]
    assert "listed" in table and "hard_example_mining: Never" in table
    assert main(["plugins", "list", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry == {
        "name": "listed",
        "version": None,
        "entry_point": None,
        "status": "ok",
        "error": None,
        "algorithms": {"hard_example_mining": ["Never"]},
        "hooks": ["sedna_register_hard_example_miners"],
        "problems": [],
    }


def test_version(sedna_pm: SednaPluginManager, capsys: pytest.CaptureFixture[str]) -> None:
    sedna_pm.register(Listed(), name="listed")
    assert main(["--version"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("sedna-core ")
    assert out[1].split() == ["listed", "-", "(ok)"]


def test_installed_listing_shows_the_backends() -> None:
    done = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "sedna"), "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    listing = {p["name"]: p for p in json.loads(done.stdout)}
    assert set(listing) >= BACKENDS
    for name in BACKENDS:
        assert listing[name]["entry_point"].startswith(name.removeprefix("sedna-plugin-") + " = ")
        assert set(listing[name]) >= {"version", "status", "error", "algorithms", "hooks"}


PROBE = """
import contextlib, io, json, sys
import sedna_core
after_import = [m for m in {frameworks!r} if m in sys.modules]
from sedna_core.cli.main import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    rc = main(["plugins", "list", "--json"])
    main(["--version"])
listed = [p["name"] for p in json.loads(out.getvalue().split("\\nsedna-core")[0])]
after_list = [m for m in {frameworks!r} if m in sys.modules]
print(json.dumps({{"rc": rc, "import": after_import, "list": after_list, "plugins": listed}}))
"""


def test_import_and_listing_never_import_a_framework() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(frameworks=FRAMEWORKS)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["rc"] == 0
    assert set(result["plugins"]) >= BACKENDS  # the backends really were loaded
    assert result["import"] == []
    assert result["list"] == [], f"`sedna plugins list` imported {result['list']}"
