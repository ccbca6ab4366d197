"""Broken plugins installed for real in a throwaway virtual environment.

The environment sees this one's packages through a ``.pth`` file (``site.addsitedir`` on our
site-packages, so the editable installs' finders work too); three deliberately broken plugin
distributions from ``broken_plugins/`` are pip-installed into it without network access.
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

HERE = Path(__file__).parent
BROKEN = {
    "sedna-plugin-broken-import": "error",
    "sedna-plugin-broken-requirement": "unavailable",
    "sedna-plugin-broken-hook": "incompatible",
}

RESOLVE_ALL = """
import json
from sedna_core.log import configure_logging
from sedna_core.plugins import get_plugin_manager, resolve_algorithm
configure_logging()  # warnings to stderr
pm = get_plugin_manager()
out = {}
for info in pm.list_plugins():
    if info.status != "ok":
        continue
    for kind, names in info.algorithms.items():
        for name in names:
            entries = pm.algorithm_entries(kind)[name]
            spec = name if len(entries) == 1 else f"{info.name}:{name}"
            cls = resolve_algorithm(kind, spec)
            out[f"{kind}/{spec}"] = f"{cls.__module__}.{cls.__qualname__}"
print(json.dumps(out))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SEDNA_", "PYTHON"))}
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    env["SEDNA_LOG_FORMAT"] = "json"
    return env


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=240, **kw)


@pytest.fixture(scope="module")
def broken_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("broken-venv")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=True).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
    target = Path(purelib.stdout.strip())
    parents = [p for p in site.getsitepackages() if Path(p).is_dir()]
    (target / "_sedna_parent_env.pth").write_text(
        "import site; " + "; ".join(f"site.addsitedir({p!r})" for p in parents) + "\n"
    )
    # build from copies so that build/ and *.egg-info never land in the source tree
    sources = []
    for folder in ("import", "requirement", "hook"):
        dest = root / "src" / folder
        shutil.copytree(HERE / "broken_plugins" / folder, dest)
        sources.append(str(dest))
    installed = _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            *sources,
        ]
    )
    assert installed.returncode == 0, installed.stderr
    return python


def _listing(python: Path) -> tuple[list[dict], str]:
    done = _run([str(python), "-m", "sedna_core.cli.main", "plugins", "list", "--json"])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.mark.venv
def test_broken_plugins_are_reported_and_nothing_else_breaks(broken_venv: Path) -> None:
    listing, log = _listing(broken_venv)
    by_name = {p["name"]: p for p in listing}
    for name, status in BROKEN.items():
        assert by_name[name]["status"] == status, by_name[name]
        assert by_name[name]["error"]
        assert by_name[name]["version"] == "0.0.1"
        assert name in log  # one warning each, on stderr
    assert "sedna-nonexistent-framework" in by_name["sedna-plugin-broken-requirement"]["error"]
    assert "sedna_register_time_machines" in by_name["sedna-plugin-broken-hook"]["error"]
    assert "on purpose" in by_name["sedna-plugin-broken-import"]["error"]

    # every other plugin is exactly as it is in this environment, and its algorithms resolve
    here = {
        p["name"]: p
        for p in json.loads(
            _run([sys.executable, "-m", "sedna_core.cli.main", "plugins", "list", "--json"]).stdout
        )
    }
    assert set(by_name) - set(BROKEN) == set(here)
    for name, plugin in here.items():
        assert by_name[name]["status"] == plugin["status"], name
        assert by_name[name]["algorithms"] == plugin["algorithms"], name
    resolved = _run([str(broken_venv), "-c", RESOLVE_ALL])
    assert resolved.returncode == 0, resolved.stderr
    names = json.loads(resolved.stdout)
    expected = sum(
        len(v) for p in here.values() if p["status"] == "ok" for v in p["algorithms"].values()
    )
    assert len(names) == expected


@pytest.mark.venv
def test_strict_mode_fails_the_listing(broken_venv: Path) -> None:
    env = _env() | {"SEDNA_STRICT_PLUGINS": "1"}
    done = subprocess.run(
        [str(broken_venv), "-m", "sedna_core.cli.main", "plugins", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1
    assert "sedna-plugin-broken-" in done.stderr


@pytest.mark.venv
def test_disabled_broken_plugins_are_not_imported(broken_venv: Path) -> None:
    env = _env() | {
        "SEDNA_STRICT_PLUGINS": "1",
        "SEDNA_DISABLE_PLUGINS": "broken-import,sedna-plugin-broken-requirement,broken-hook",
    }
    done = subprocess.run(
        [str(broken_venv), "-m", "sedna_core.cli.main", "plugins", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    statuses = {p["name"]: p["status"] for p in json.loads(done.stdout)}
    assert {statuses[n] for n in BROKEN} == {"disabled"}
