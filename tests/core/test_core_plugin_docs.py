"""docs/plugins.md documents every algorithm kind, with signatures that match the code.

Each kind of ``KINDS`` needs a section ``### `kind` `` naming its registration hook, a contract
block (``<!-- fragment: contract ... -->`` before a python block of stubs) declaring its base
class with every abstract method, and a runnable example that checks and resolves an algorithm
of that kind. Every stub's signature is compared with the code's through ``inspect.signature``,
so a kind added later, or a signature changed, fails here until the page follows. (The
examples themselves run in the docs harness, tests/docs.)
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

from sedna_core.algorithms import KINDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"
MODULES = (
    "sedna_core.algorithms",
    "sedna_core.algorithms._base",
    "sedna_core.algorithms.aggregation",
    "sedna_core.algorithms.mtl",
    "sedna_core.algorithms.backend",
    "sedna_core.algorithms.hem",
    "sedna_core.testing",
    "sedna_core.plugins",
)
FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\s*$")
MARKER = re.compile(r"^\s*<!--\s*(?P<kind>fragment|file)\s*:\s*(?P<value>.*?)\s*-->\s*$")


@dataclasses.dataclass
class Block:
    line: int
    lang: str
    source: str
    marker: str | None
    value: str


def blocks(text: str) -> list[Block]:
    lines = text.splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if m is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.match(lines[i - 1]) if i else None
        out.append(
            Block(
                i + 1,
                m["lang"],
                "\n".join(lines[i + 1 : end]) + "\n",
                marker["kind"] if marker else None,
                marker["value"] if marker else "",
            )
        )
        i = end + 1
    return out


def sections(text: str) -> dict[str, str]:
    """``### `kind` `` heading -> the text up to the next heading of level 2 or 3."""
    parts = re.split(r"^(#{2,3} .*)$", text, flags=re.MULTILINE)
    out = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        m = re.fullmatch(r"### `(\w+)`", heading.strip())
        if m:
            out[m[1]] = body
    return out


def contract_blocks(text: str) -> list[Block]:
    return [
        b
        for b in blocks(text)
        if b.lang == "python" and b.marker == "fragment" and b.value.startswith("contract")
    ]


def resolve(name: str) -> Any:
    for module in MODULES:
        value = getattr(importlib.import_module(module), name, None)
        if value is not None:
            return value
    raise AssertionError(f"docs/plugins.md names {name!r}, which no plugin-API module has")


def _stub_signature(node: ast.FunctionDef, real: Any) -> inspect.Signature:
    glb = getattr(real, "__globals__", {})

    def default(expr: ast.expr) -> Any:
        try:
            return ast.literal_eval(expr)
        except ValueError:
            return eval(ast.unparse(expr), glb)  # a module constant such as BLOCK_ELEMENTS

    def ann(expr: ast.expr | None) -> Any:
        return inspect.Parameter.empty if expr is None else ast.unparse(expr)

    a = node.args
    params: list[inspect.Parameter] = []
    positional = [*a.posonlyargs, *a.args]
    defaults = [inspect.Parameter.empty] * (len(positional) - len(a.defaults)) + [
        default(d) for d in a.defaults
    ]
    for i, (arg, dflt) in enumerate(zip(positional, defaults, strict=True)):
        kind = (
            inspect.Parameter.POSITIONAL_ONLY
            if i < len(a.posonlyargs)
            else inspect.Parameter.POSITIONAL_OR_KEYWORD
        )
        params.append(
            inspect.Parameter(arg.arg, kind, default=dflt, annotation=ann(arg.annotation))
        )
    if a.vararg:
        params.append(
            inspect.Parameter(
                a.vararg.arg, inspect.Parameter.VAR_POSITIONAL, annotation=ann(a.vararg.annotation)
            )
        )
    for arg, dflt in zip(a.kwonlyargs, a.kw_defaults, strict=True):
        params.append(
            inspect.Parameter(
                arg.arg,
                inspect.Parameter.KEYWORD_ONLY,
                default=inspect.Parameter.empty if dflt is None else default(dflt),
                annotation=ann(arg.annotation),
            )
        )
    if a.kwarg:
        params.append(
            inspect.Parameter(
                a.kwarg.arg, inspect.Parameter.VAR_KEYWORD, annotation=ann(a.kwarg.annotation)
            )
        )
    return inspect.Signature(params, return_annotation=ann(node.returns))


def _unwrap(obj: Any) -> Any:
    if isinstance(obj, classmethod | staticmethod):
        return obj.__func__
    if isinstance(obj, property):
        return obj.fget
    return obj


def _annotation_of(cls: type, name: str) -> str | None:
    for klass in cls.__mro__:
        found = vars(klass).get("__annotations__", {}).get(name)
        if found is not None:
            return found if isinstance(found, str) else inspect.formatannotation(found)
    return None


def check_stub(node: ast.stmt, where: str) -> list[str]:
    """Problems of one top-level stub (a class or a function) against the code."""
    problems = []
    real = resolve(node.name)  # type: ignore[attr-defined]
    if isinstance(node, ast.FunctionDef):
        want, got = str(_stub_signature(node, real)), str(inspect.signature(real))
        if want != got:
            problems.append(f"{where}: {node.name}{want} but the code has {node.name}{got}")
        return problems
    assert isinstance(node, ast.ClassDef), ast.dump(node)
    assert isinstance(real, type), real
    for item in node.body:
        if isinstance(item, ast.FunctionDef):
            try:
                member = _unwrap(inspect.getattr_static(real, item.name))
            except AttributeError:
                problems.append(f"{where}: {node.name}.{item.name} does not exist in the code")
                continue
            want = str(_stub_signature(item, member))
            got = str(inspect.signature(member))
            if want != got:
                problems.append(
                    f"{where}: {node.name}.{item.name}{want} but the code has "
                    f"{node.name}.{item.name}{got}"
                )
        elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            attr = item.target.id
            declared = _annotation_of(real, attr)
            if declared is None and not hasattr(real, attr):
                problems.append(f"{where}: {node.name}.{attr} does not exist in the code")
            elif declared is not None and declared != ast.unparse(item.annotation):
                problems.append(
                    f"{where}: {node.name}.{attr}: {ast.unparse(item.annotation)} but the code "
                    f"declares {declared}"
                )
    return problems


def test_every_contract_signature_matches_the_code() -> None:
    text = PAGE.read_text(encoding="utf-8")
    found = contract_blocks(text)
    assert len(found) >= len(KINDS)
    problems = []
    for block in found:
        tree = ast.parse(block.source)
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                problems += check_stub(node, f"docs/plugins.md:{block.line}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_is_documented(kind: str) -> None:
    """A kind added to KINDS must get its section: base class, every abstract method, example."""
    base, hook = KINDS[kind]
    text = PAGE.read_text(encoding="utf-8")
    body = sections(text).get(kind)
    assert body is not None, f"docs/plugins.md has no section '### `{kind}`'"
    assert f"`{hook}`" in body, f"the {kind} section does not name its hook {hook}"
    stubs = {
        node.name: node
        for b in contract_blocks(body)
        for node in ast.parse(b.source).body
        if isinstance(node, ast.ClassDef)
    }
    assert base.__name__ in stubs, f"the {kind} section has no contract block for {base.__name__}"
    documented = {
        item.name
        for node in stubs.values()
        for item in node.body
        if isinstance(item, ast.FunctionDef)
    }
    missing = sorted(set(getattr(base, "__abstractmethods__", ())) - documented)
    assert not missing, f"the {kind} contract lacks the abstract method(s) {missing}"
    examples = [b for b in blocks(body) if b.lang == "python" and b.marker is None]
    assert any(
        "check_algorithm(" in b.source
        and (
            f'create_algorithm(\n    "{kind}"' in b.source
            or f'create_algorithm("{kind}"' in b.source
        )
        for b in examples
    ), f"the {kind} section has no runnable example that checks and creates an algorithm"


def test_the_stub_checker_catches_drift() -> None:
    stub = ast.parse(
        "class BaseHardExampleMiner:\n"
        "    def mine(self, results: list) -> np.ndarray: ...\n"
        "    missing_attr: int\n"
        "def iter_blocks(specs, block: int = 3) -> None: ...\n"
    )
    problems = [p for node in stub.body for p in check_stub(node, "x")]
    assert len(problems) == 3, problems
    assert "BaseHardExampleMiner.mine(self, results: 'list')" in problems[0]
