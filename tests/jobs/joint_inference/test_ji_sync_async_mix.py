"""Mixing the blocking and the async API of a job never prints ``Unclosed client session`` or
``Event loop is closed`` (the interpreter's exit included, hence a subprocess per case)."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROGRAM = """
import asyncio, sys
import numpy as np
from sedna_core import BigModelService, JointInference

class Model:
    def predict(self, data, **kwargs):
        data = np.asarray(data, dtype=float)
        p = np.full((len(data), 2), 0.5)  # never confident: every sample goes to the cloud
        return p

    def train(self, *a, **k):
        return {}

x = np.ones((2, 4))  # inference_batch: each sample is mined (and sent to the cloud)
with BigModelService(estimator=Model(), port=0) as cloud:
    ji = JointInference(estimator=Model(), cloud_url=cloud.url,
                        hard_example_mining={"method": "Confidence", "param": {"threshold": 0.9}})
    case = sys.argv[1]
    if case == "run-then-close":
        asyncio.run(ji.ainference_batch(x))
        ji.close()
    elif case == "sync-async-sync":
        ji.inference_batch(x)
        asyncio.run(ji.ainference_batch(x))
        ji.inference_batch(x)
        ji.close()
    elif case == "two-loops":
        asyncio.run(ji.ainference_batch(x)); asyncio.run(ji.ainference_batch(x)); ji.close()
    elif case == "async-with":
        async def main():
            async with ji:
                await ji.ainference_batch(x)
        asyncio.run(main())
    elif case == "never-closed":
        asyncio.run(ji.ainference_batch(x))
print("done")
"""


@pytest.mark.parametrize(
    "case", ["run-then-close", "sync-async-sync", "two-loops", "async-with", "never-closed"]
)
def test_no_unclosed_session_or_closed_loop(case: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, case],
        capture_output=True,
        text=True,
        timeout=120,
        env={"LOG_LEVEL": "WARNING", "PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "default"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("done")
    for text in (
        "Unclosed client session",
        "Unclosed connector",
        "Event loop is closed",
        "Traceback",
        "Task was destroyed",
    ):
        assert text not in done.stderr, done.stderr
