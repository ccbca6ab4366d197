"""Problems visible when listing, in a throwaway environment with real installs.

Two distributions register the same aggregation name (both rendered from the template), one
misspells a registration hook, one needs a package that is not installed. The listing flags
each with its fix, "did you mean" survives the conflict, and ``sedna plugins install`` /
``uninstall`` change the environment of the running ``sedna``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TYPO_HOOKS = """
import numpy as np
from sedna_core.algorithms import BaseHardExampleMiner
from sedna_core.plugins import hookimpl


class Never(BaseHardExampleMiner):
    name = "Never"

    def mine(self, results):
        return np.zeros(len(results), dtype=bool)


@hookimpl
def sedna_register_hard_example_miner():  # the declared hook ends in "miners"
    return [Never]
"""
NEEDY_HOOKS = """
from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_backends():
    return []
"""
RESOLVE = """
import json, sys
from sedna_core.errors import UnknownAlgorithmError
from sedna_core.plugins import create_algorithm
out = {}
try:
    create_algorithm("aggregation", "GeoMedain")
except UnknownAlgorithmError as exc:
    out["typo"] = str(exc)
    out["suggestion"] = exc.suggestion
out["qualified"] = type(create_algorithm("aggregation", "acme_a:GeoMedian")).__module__
print(json.dumps(out))
"""


def _project(root: Path, dist: str, module: str, code: str, requires: list[str]) -> Path:
    folder = root / dist
    folder.mkdir(parents=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(code))
    deps = ", ".join(json.dumps(r) for r in ["sedna-core>=0.1,<0.2", *requires])
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=77"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{dist}"
        version = "0.0.1"
        dependencies = [{deps}]

        [project.entry-points."sedna.plugins"]
        {module} = "{module}"

        [tool.setuptools]
        py-modules = ["{module}"]
        """)
    )
    return folder


@pytest.fixture(scope="module")
def problem_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    root = tmp_path_factory.mktemp("problems")
    spec = importlib.util.spec_from_file_location(
        "sedna_template_problems", ROOT / "plugins-contrib" / "template" / "render.py"
    )
    assert spec is not None and spec.loader is not None
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    sources = [
        render.render(
            render.context(name, kind="aggregation", algorithm_name="GeoMedian"), root / "src"
        )
        for name in ("acme-a", "acme-b")
    ]
    sources.append(_project(root / "src", "sedna-plugin-typo", "typo_hooks", TYPO_HOOKS, []))
    sources.append(
        _project(
            root / "src", "sedna-plugin-needy", "needy_hooks", NEEDY_HOOKS, ["surely-absent-xyz>=2"]
        )
    )
    later = _project(root / "later", "sedna-plugin-later", "later_hooks", NEEDY_HOOKS, [])
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    shared = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "shared-venv.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PYTHON", "PIP_", "VIRTUAL", "SEDNA_"))
    }
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INDEX="1", PIP_NO_CACHE_DIR="1")
    env.update(SEDNA_LOG_FORMAT="json", LOG_LEVEL="WARNING")
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    done = subprocess.run([*pip, *map(str, sources)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return python, env, later


def _sedna(python: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-m", "sedna_core.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.venv
def test_conflicts_typos_and_missing_requirements_are_listed(problem_venv) -> None:
    python, env, _ = problem_venv
    done = _sedna(python, env, "plugins", "list", "--json")
    assert done.returncode == 0, done.stderr
    listing = {p["name"]: p for p in json.loads(done.stdout)}

    for me, other in (("a", "b"), ("b", "a")):
        entry = listing[f"sedna-plugin-acme-{me}"]
        assert entry["status"] == "ok"
        (problem,) = entry["problems"]
        assert f"also registered by sedna-plugin-acme-{other}" in problem
        assert "'sedna-plugin-acme-a:GeoMedian' or 'sedna-plugin-acme-b:GeoMedian'" in problem
        assert "SEDNA_DISABLE_PLUGINS=" in problem

    typo = listing["sedna-plugin-typo"]
    assert typo["status"] == "error"
    assert "did you mean `sedna_register_hard_example_miners`" in typo["error"]
    assert "newer sedna-core" not in typo["error"]  # not blamed on the core's version

    needy = listing["sedna-plugin-needy"]
    assert needy["status"] == "unavailable"
    assert needy["error"].endswith("install with: pip install 'surely-absent-xyz>=2'")

    shown = _sedna(python, env, "plugins", "show", "sedna-plugin-needy", "--json")
    assert json.loads(shown.stdout)["plugins"][0]["missing"] == ["surely-absent-xyz>=2"]

    table = _sedna(python, env, "plugins", "list", "--kind", "aggregation")
    assert "sedna-plugin-acme-a" in table.stdout and "sedna-plugin-typo" not in table.stdout
    assert "is also registered by" in table.stdout  # problems printed under the table


@pytest.mark.venv
def test_did_you_mean_survives_the_conflict(problem_venv) -> None:
    python, env, _ = problem_venv
    done = subprocess.run(
        [str(python), "-c", RESOLVE], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["suggestion"] == "GeoMedian"
    assert "Did you mean 'GeoMedian'?" in out["typo"]
    assert "'sedna-plugin-acme-a:GeoMedian' or 'sedna-plugin-acme-b:GeoMedian'" in out["typo"]
    assert out["qualified"] == "sedna_plugin_acme_a.aggregation"  # entry-point name qualifies

    shown = _sedna(python, env, "plugins", "show", "GeoMedian", "--json")
    doc = json.loads(shown.stdout)
    assert [p["name"] for p in doc["plugins"]] == ["sedna-plugin-acme-a", "sedna-plugin-acme-b"]
    specs = [p["algorithms_detail"][0]["spec"] for p in doc["plugins"]]
    assert specs == ["sedna-plugin-acme-a:GeoMedian", "sedna-plugin-acme-b:GeoMedian"]

    calm = {**env, "SEDNA_DISABLE_PLUGINS": "sedna-plugin-acme-b"}
    listed = json.loads(_sedna(python, calm, "plugins", "list", "--json").stdout)
    assert not {p["name"]: p for p in listed}["sedna-plugin-acme-a"]["problems"]


@pytest.mark.venv
def test_install_and_uninstall_into_the_running_environment(problem_venv) -> None:
    python, env, later = problem_venv
    done = _sedna(
        python, env, "plugins", "install", "--no-deps", "--no-build-isolation", "--json", str(later)
    )
    assert done.returncode == 0, done.stderr
    (entry,) = json.loads(done.stdout)
    assert (entry["name"], entry["status"]) == ("sedna-plugin-later", "ok")
    listed = json.loads(_sedna(python, env, "plugins", "list", "--json").stdout)
    assert "sedna-plugin-later" in {p["name"] for p in listed}

    gone = _sedna(python, env, "plugins", "uninstall", "later_hooks")  # an entry-point name
    assert gone.returncode == 0, gone.stderr
    listed = json.loads(_sedna(python, env, "plugins", "list", "--json").stdout)
    assert "sedna-plugin-later" not in {p["name"] for p in listed}

    bad = _sedna(python, env, "plugins", "install", str(later / "nope"))
    assert bad.returncode != 0 and "pip install failed" in bad.stderr
