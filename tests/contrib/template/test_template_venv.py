"""The rendered plugin, installed into a throwaway virtual environment, is found and used.

The environment sees the shared one's packages through a ``.pth`` file, so nothing is
downloaded: only the rendered plugin is installed (``--no-deps --no-build-isolation``).
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DIST = "sedna-plugin-venv-probe"
ALGORITHM = "VenvProbe"

JOB = """
import json, sys, tempfile
import numpy as np
from sedna_core.jobs.incremental import IncrementalLearning
from sedna_core.testing import InMemoryEstimator

rng = np.random.default_rng(0)
x = rng.normal(size=(60, 4))
y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 1).astype(int)
with tempfile.TemporaryDirectory() as ws:
    # the miner is named as a user or Sedna's HEM_NAME would name it: found by discovery
    il = IncrementalLearning(
        estimator=InMemoryEstimator(n_classes=3),
        hard_example_mining={"method": sys.argv[1], "param": {"margin": "0.3"}},
        workspace=ws, mine_proba=True, hard_examples=False,
    )
    with il:
        il.train((x, y))
        out = il.inference_batch(x[:20])
        json.dump({"miner": type(il.hem).__module__, "margin": il.hem.margin,
                   "hard": int(out.is_hard.sum()), "stats": il.stats}, sys.stdout)
"""


def _render(dest: Path) -> Path:
    spec = importlib.util.spec_from_file_location(
        "sedna_template_render_venv", ROOT / "plugins-contrib" / "template" / "render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.render(module.context("venv-probe"), dest)


def _run(cmd: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.venv
def test_rendered_plugin_installs_lists_and_serves_a_job(tmp_path: Path) -> None:
    project = _render(tmp_path / "src")
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    shared = sysconfig.get_paths()["purelib"]
    (purelib / "shared-venv.pth").write_text(f"import site; site.addsitedir({shared!r})\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL"))}
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INDEX="1",
        PIP_NO_CACHE_DIR="1",
        SEDNA_LOG_FORMAT="json",
        LOG_LEVEL="WARNING",
    )
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    _run([*pip, str(project)], env, tmp_path)

    # installed in the throwaway environment only
    with pytest.raises(md.PackageNotFoundError):
        md.version(DIST)

    listing = json.loads(
        _run([str(python), "-m", "sedna_core.cli.main", "plugins", "list", "--json"], env, tmp_path)
    )
    entry = next(p for p in listing if p["name"] == DIST)
    assert entry["status"] == "ok", entry
    assert entry["version"] == "0.1.0"
    assert entry["algorithms"] == {"hard_example_mining": [ALGORITHM]}

    result = json.loads(_run([str(python), "-c", JOB, ALGORITHM], env, tmp_path))
    assert result["miner"] == "sedna_plugin_venv_probe.miner"
    assert result["margin"] == 0.3
    assert 0 < result["hard"] < 20
    assert result["stats"]["inference_number"] == 20
    assert sys.prefix != str(env_dir)
