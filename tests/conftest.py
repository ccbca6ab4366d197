"""Suite-wide settings: deterministic hypothesis, no network beyond loopback, quiet frameworks."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# Peers that phone home stay silent; frameworks stay quiet.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
os.environ.setdefault("FLWR_DISABLE_UPDATE_CHECK", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Two cores: one BLAS thread per process (subprocesses inherit it) avoids oversubscription.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


# --- The real KubeEdge Sedna SDK, run in its own virtual environment ------------------------
# `make sedna-venv` builds it (.ci/run does, and sets SEDNA_REQUIRE_PEERS=1 so that a missing
# peer fails the run instead of skipping). Outside CI the tests that need it skip with a reason.

import subprocess  # noqa: E402
from collections.abc import Iterator, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]


class RealSedna:
    """Sedna's unmodified SDK (``../shared/peers/sedna-lib``) in ``.venv-sedna``.

    ``run(code, env)`` runs a Python program with Sedna importable and returns the completed
    process; ``popen(code, env)`` starts one (stdout and stderr together, text). ``env`` is added
    to a clean environment in which Sedna's servers bind 127.0.0.1 only.
    """

    def __init__(self, python: Path, lib: Path, examples: Path) -> None:
        self.python = python
        self.lib = lib
        self.examples = examples

    def env(self, **extra: object) -> dict[str, str]:
        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "OMP_NUM_THREADS",
                "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
        base = {k: os.environ[k] for k in keep if k in os.environ}
        base.update(
            PYTHONPATH=str(self.lib), PYTHONUNBUFFERED="1", BACKEND_TYPE="SKLEARN",
            # Sedna reads these at import time; its servers must never bind beyond loopback.
            BIG_MODEL_BIND_IP="127.0.0.1", AGG_BIND_IP="127.0.0.1", KB_BIND_IP="127.0.0.1",
            BIG_MODEL_IP="127.0.0.1", AGG_IP="127.0.0.1",
        )
        base.update({k: str(v) for k, v in extra.items()})
        return base

    def run(self, code: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-c", code], env=dict(env or self.env()), cwd=cwd,
            capture_output=True, text=True, timeout=timeout,
        )

    def popen(self, code: str, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [str(self.python), "-c", code], env=dict(env or self.env()), cwd=cwd,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )


def _real_sedna_or_reason() -> RealSedna | str:
    venv = Path(os.environ.get("SEDNA_VENV", _REPO / ".venv-sedna"))
    lib = Path(os.environ.get("SEDNA_LIB", _REPO.parent / "shared/peers/sedna-lib"))
    examples = Path(os.environ.get("SEDNA_EXAMPLES", _REPO.parent / "shared/peers/sedna-examples"))
    python = venv / "bin" / "python"
    if not (lib / "sedna").is_dir():
        return f"Sedna's SDK not found at {lib} (set SEDNA_LIB)"
    if not python.exists():
        return f"no Sedna venv at {venv}: run `make sedna-venv` (or set SEDNA_VENV)"
    return RealSedna(python, lib, examples)


@pytest.fixture(scope="session")
def real_sedna() -> Iterator[RealSedna]:
    """The real Sedna SDK; skips with a reason where absent, fails under SEDNA_REQUIRE_PEERS=1."""
    found = _real_sedna_or_reason()
    if isinstance(found, str):
        if os.environ.get("SEDNA_REQUIRE_PEERS") == "1":
            pytest.fail(f"SEDNA_REQUIRE_PEERS=1 but {found}")
        pytest.skip(found)
    yield found

