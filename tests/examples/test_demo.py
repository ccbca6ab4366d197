"""`make demo`, the README's first command, runs every section to the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_demo_runs_every_section(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "examples.demo"], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for section in ("backends", "joint inference", "federated", "incremental", "lifelong"):
        assert f"=== {section} " in proc.stdout
        assert f"--- {section}: " in proc.stdout
    # the operating point is calibrated on the training half, never on the scored test half
    assert "threshold calibrated on the training half" in proc.stdout
    assert "Traceback" not in proc.stderr
