"""The API reference builds without a broken reference, and the plugin API is documented.

The build is the one ``make apidocs`` runs (Sphinx autodoc, nitpicky, warnings as errors). The
docstring rule covers every public name a plugin author uses (``sedna_core.algorithms``,
``sedna_core.testing``) and the jobs (each job class ``sedna_core`` exports, with the methods
it gets from its private building blocks, and the public functions of the job modules): a
docstring, every parameter named in it, and the return value described (a ``Returns`` section,
or a summary that names the value: "The new global weights...", "Whether...").
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sedna_core

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_API = (
    "sedna_core.algorithms",
    "sedna_core.algorithms.aggregation",
    "sedna_core.algorithms.backend",
    "sedna_core.algorithms.hem",
    "sedna_core.algorithms.mtl",
    "sedna_core.testing",
    "sedna_core.testing.doubles",
    "sedna_core.testing._checks",
)
#: the modules of the jobs ``sedna_core`` exports (a job added there is covered too)
JOB_MODULES = sorted({m for m in sedna_core._LAZY.values() if m.startswith("sedna_core.jobs.")})
#: first words of a summary that names what is returned
VALUE_WORDS = {"The", "A", "An", "One", "Whether", "What", "Each", "Every", "Its", "Elements"}


def test_the_api_reference_builds_without_broken_references(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    out = tmp_path / "html"
    build = ["-b", "html", "-n", "-W", "--keep-going", "-q", str(ROOT / "docs" / "api"), str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", *build],
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert proc.returncode == 0, proc.stderr[-6000:]
    page = (out / "algorithms.html").read_text(encoding="utf-8")
    for name in ("StreamingAggregation", "BaseUnseenTaskDetector", "conformance_inputs"):
        assert name in page
    jobs = (out / "jobs.html").read_text(encoding="utf-8")
    assert "LifelongLearning" in jobs and "inference_batch" in jobs


def _members() -> Iterator[tuple[str, Any, str]]:
    """``(qualified name, function, docstring)`` of every public callable of the plugin API."""
    seen: set[int] = set()
    for modname in PLUGIN_API:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen or not str(getattr(obj, "__module__", "")).startswith(PLUGIN_API):
                continue  # re-exported from elsewhere (sedna_core.errors)
            seen.add(id(obj))
            qual = f"{modname}.{name}"
            if inspect.isfunction(obj):
                yield qual, obj, inspect.getdoc(obj) or ""
            elif inspect.isclass(obj):
                yield qual, obj, inspect.getdoc(obj) or ""
                yield from _methods(qual, obj)


def _job_members() -> Iterator[tuple[str, Any, str]]:
    """The same for the jobs: each job class ``sedna_core`` exports with every public method
    it has, inherited ones included (the reference shows them: ``:inherited-members:``), and
    the public functions of the job modules (``calibrate_threshold``, ``parse_condition``...)."""
    jobs = {name for name, mod in sedna_core._LAZY.items() if mod in JOB_MODULES}
    seen: set[int] = set()
    for modname in JOB_MODULES:
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if id(obj) in seen:
                continue  # an alias (TSBigModelService)
            seen.add(id(obj))
            qual = f"{modname}.{name}"
            if inspect.isfunction(obj):
                yield qual, obj, inspect.getdoc(obj) or ""
            elif inspect.isclass(obj) and name in jobs:
                yield qual, obj, inspect.getdoc(obj) or ""
                yield from _methods(qual, obj, inherited=True)


def _methods(qual: str, cls: type, *, inherited: bool = False) -> Iterator[tuple[str, Any, str]]:
    names = dir(cls) if inherited else list(vars(cls))
    for attr in names:
        if attr.startswith("_") and attr != "__init__":
            continue
        raw = inspect.getattr_static(cls, attr)
        func = raw.__func__ if isinstance(raw, classmethod | staticmethod) else raw
        func = func.fget if isinstance(func, property) else func
        if not inspect.isfunction(func) or not func.__module__.startswith("sedna_core"):
            continue
        # an override is documented by the method it overrides (Sphinx shows that one too)
        doc = next(
            (
                inspect.getdoc(vars(base)[attr])
                for base in cls.__mro__
                if attr in vars(base) and inspect.getdoc(vars(base)[attr])
            ),
            "",
        )
        if attr == "__init__":  # parameters are documented on the class
            doc = f"{inspect.getdoc(cls) or ''}\n{doc or ''}"
        yield f"{qual}.{attr}", func, doc or ""


def _problems(name: str, func: Any, doc: str) -> list[str]:
    if not doc.strip():
        return [f"{name}: no docstring"]
    if not callable(func) or inspect.isclass(func):
        return []
    sig = inspect.signature(func)
    out = []
    params = [
        p.name
        for p in sig.parameters.values()
        if p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    missing = [p for p in params if p not in doc]
    if missing:
        out.append(f"{name}: parameters not described: {', '.join(missing)}")
    returns = sig.return_annotation
    if returns not in (None, "None", sig.empty) and not name.endswith("__init__"):
        first = doc.split()[0].strip("`")
        described = (
            "Returns\n-------" in doc or first in VALUE_WORDS or "Returns " in doc or first == ""
        )
        if not described:
            out.append(f"{name}: the return value is not described (summary starts {first!r})")
    return out


def test_every_public_name_of_the_plugin_api_is_documented() -> None:
    problems = [p for name, func, doc in _members() for p in _problems(name, func, doc)]
    assert not problems, "\n".join(problems)


def test_every_job_and_its_public_methods_are_documented() -> None:
    members = list(_job_members())
    names = {name for name, _, _ in members}
    # the rule reaches the inherited methods and the module functions, not only the classes
    for expected in (
        "sedna_core.jobs.joint_inference.JointInference.inference_batch",
        "sedna_core.jobs.incremental.IncrementalLearning.rollback",
        "sedna_core.jobs.lifelong.LifelongLearning.report",
        "sedna_core.jobs.federated.AggregationServer.status",
        "sedna_core.jobs.joint_inference.calibrate_threshold",
    ):
        assert expected in names
    problems = [p for name, func, doc in members for p in _problems(name, func, doc)]
    assert not problems, "\n".join(problems)


def test_the_rule_catches_what_it_should() -> None:
    def undocumented(x: int) -> int:
        return x

    def terse(x: int) -> int:
        """Compute."""
        return x

    def good(x: int) -> int:
        """The double of ``x``."""
        return 2 * x

    assert _problems("u", undocumented, "") == ["u: no docstring"]
    assert len(_problems("t", terse, "Compute.")) == 2
    assert _problems("g", good, inspect.getdoc(good) or "") == []
