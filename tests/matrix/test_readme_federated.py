"""The README's federated edge program, run as written in four processes against a server.

No ``WORKER_NAME`` (so every client needs its own default id), an unfitted scikit-learn model,
and class-disjoint shards (edge k sees only its own digits): the job must complete and every
edge's final model must reach 0.85 accuracy on all digits.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

from sedna_core.jobs.federated import AggregationServer

ROOT = Path(__file__).resolve().parents[2]


def readme_edge_program() -> str:
    """The ```python block of README.md's "Jobs at a glance" that runs FederatedLearning."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Jobs at a glance", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    found = [b for b in blocks if "FederatedLearning(" in b]
    assert len(found) == 1, "README.md's Jobs at a glance needs one federated block"
    return found[0]


def test_readme_federated_snippet_in_four_processes(tmp_path: Path) -> None:
    program = tmp_path / "edge.py"
    program.write_text(readme_edge_program(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("WORKER_NAME", "SEDNA_TOKEN")}
    env.update(
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
    )

    async def main() -> tuple[object, list[tuple[int, str, str]]]:
        # as the README's cloud line: 4 participants, 30 rounds, FedAvg
        server = AggregationServer("FedAvg", exit_round=30, participants_count=4, port=0)
        await server.astart()
        try:
            host, port = server.ws_url.removeprefix("ws://").rsplit(":", 1)
            procs = [
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    str(program),
                    cwd=tmp_path,
                    env={**env, "EDGE": str(k), "AGG_IP": host, "AGG_PORT": port},
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
                for k in range(4)
            ]
            outs = []
            for p in procs:
                out, err = await asyncio.wait_for(p.communicate(), timeout=300)
                outs.append((p.returncode or 0, out.decode(), err.decode()))
            result = await asyncio.wait_for(server.wait(), timeout=60)
        finally:
            await server.astop()
        return result, outs

    result, outs = asyncio.run(main())
    for code, _out, err in outs:
        assert code == 0, err[-3000:]
    assert result.status == "completed" and result.rounds == 30  # type: ignore[attr-defined]
    scores = [float(out.split("accuracy on all digits:")[1]) for _, out, _ in outs]
    print("README federated example, accuracy on all digits per edge:", scores)
    assert min(scores) >= 0.85, scores
