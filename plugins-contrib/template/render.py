"""Render the sedna-core plugin template into a new, working plugin distribution.

::

    python plugins-contrib/template/render.py confidence-gap --dest ~/src
    # -> ~/src/sedna-plugin-confidence-gap/  pyproject.toml, README.md, package, tests
    python plugins-contrib/template/render.py acme --kind aggregation --algorithm-name GeoMedian

    cd ~/src/sedna-plugin-confidence-gap
    pip install -e .            # the entry point makes sedna-core find it
    pytest                      # the conformance kit of sedna_core.testing, and more
    sedna plugins list          # sedna-plugin-confidence-gap ... ok ... ConfidenceGap

The template is two plain folders: ``skeleton/`` (what every plugin has) and ``kinds/<kind>/``
(one working algorithm of that kind, its tests and a usage snippet), with placeholders
``{{ name }}`` in file contents and in file and folder names. This script fills them with
:class:`string.Template` and nothing else, so rendering needs only Python: no copier or
cookiecutter (and their Jinja2, prompt and VCS dependencies) on a machine that may be an edge
device or a locked-down CI.
A placeholder the script does not know is an error, never left in the output.
"""

from __future__ import annotations

import argparse
import keyword
import re
import string
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

SKELETON = Path(__file__).resolve().with_name("skeleton")
KINDS_DIR = Path(__file__).resolve().with_name("kinds")
DEFAULT_CORE_RANGE = ">=0.1,<0.2"
DEFAULT_KIND = "hard_example_mining"


class Kind(NamedTuple):
    """What the template renders for one algorithm kind (files in ``kinds/<kind>/``)."""

    hook: str  # the registration hook (sedna_core.algorithms.KINDS has the same table)
    module: str  # the algorithm's module in the package
    suffix: str  # the default class name is <CamelCase name><suffix>
    title: str  # "a <title> plugin for sedna-core"
    rule: str  # what the rendered algorithm does, for the package description


#: every kind of sedna_core.algorithms.KINDS (a test checks the two agree)
KINDS: dict[str, Kind] = {
    "backend": Kind(
        "sedna_register_backends", "backend", "Backend", "backend",
        "a numpy nearest-centroid classifier",
    ),
    "aggregation": Kind(
        "sedna_register_aggregators", "aggregation", "Aggregation", "aggregation",
        "the geometric median of client updates",
    ),
    "hard_example_mining": Kind(
        "sedna_register_hard_example_miners", "miner", "Miner", "hard-example miner",
        "top-two margin",
    ),
    "task_definition": Kind(
        "sedna_register_task_definitions", "definition", "Definition", "task definition",
        "one task per attribute value",
    ),
    "task_allocation": Kind(
        "sedna_register_task_allocators", "allocation", "Allocation", "task allocation",
        "by attribute value",
    ),
    "task_relation_discovery": Kind(
        "sedna_register_task_relation_discoverers", "relation", "RelationDiscover",
        "task relation discovery", "groups by a shared attribute",
    ),
    "task_remodeling": Kind(
        "sedna_register_task_remodelers", "remodeling", "Remodeling", "task remodeling",
        "splits a batch by task",
    ),
    "inference_integrate": Kind(
        "sedna_register_inference_integrators", "integration", "Integrate",
        "inference integration", "results back in input order",
    ),
    "unseen_task_detection": Kind(
        "sedna_register_unseen_task_detectors", "detector", "Detector", "unseen-task detector",
        "distance to the nearest task centroid",
    ),
    "task_update_decision": Kind(
        "sedna_register_task_update_decisions", "decision", "UpdateDecision",
        "task update decision", "known rows update their tasks",
    ),
    "update_transform": Kind(
        "sedna_register_update_transforms", "transform", "Transform", "update transform",
        "sign compression with a per-tensor scale",
    ),
}  # fmt: skip
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Braces(string.Template):
    """``{{ name }}`` placeholders (``$`` is common in shell snippets and must stay as is)."""

    delimiter = "{{"
    pattern = r"""
    \{\{(?:
      (?P<escaped>\{\{) |
      \s*(?P<named>[a-z_][a-z0-9_]*)\s*\}\} |
      (?P<braced>(?!)) |
      (?P<invalid>)
    )
    """


class RenderError(ValueError):
    """A bad option, an unknown placeholder, or a destination that already exists."""


def context(
    name: str,
    *,
    kind: str = DEFAULT_KIND,
    algorithm_name: str | None = None,
    class_name: str | None = None,
    description: str | None = None,
    author: str = "Your Name",
    core_range: str = DEFAULT_CORE_RANGE,
) -> dict[str, str]:
    """The placeholder values for a plugin called ``name`` (lower-case words joined by ``-``)
    providing one algorithm of ``kind``."""
    if kind not in KINDS:
        raise RenderError(f"kind {kind!r}: choose one of {', '.join(sorted(KINDS))}")
    spec = KINDS[kind]
    if not _NAME.match(name):
        raise RenderError(
            f"plugin name {name!r}: use lower-case words joined by '-', e.g. 'confidence-gap'"
        )
    words = name.split("-")
    camel = "".join(w.capitalize() for w in words)
    algorithm = algorithm_name or camel
    cls = class_name or f"{camel}{spec.suffix}"
    if not _IDENTIFIER.match(algorithm) or ":" in algorithm:
        raise RenderError(f"algorithm name {algorithm!r}: use letters, digits and '_'")
    if not _IDENTIFIER.match(cls) or keyword.iskeyword(cls):
        raise RenderError(f"class name {cls!r} is not a Python identifier")
    for text, what in ((author, "author"), (description or "", "description")):
        if '"' in text or "\n" in text or "\\" in text:
            raise RenderError(f"{what} must be one line without quotes or backslashes")
    snake = "_".join(words)
    return {
        "name": name,
        "dist_name": f"sedna-plugin-{name}",
        "package": f"sedna_plugin_{snake}",
        "entry_point": snake,
        "algorithm_name": algorithm,
        "class_name": cls,
        "description": description
        or f"{algorithm}: a {spec.title} plugin for sedna-core ({spec.rule}).",
        "author": author,
        "core_range": core_range,
        "kind": kind,
        "kind_title": spec.title,
        "hook": spec.hook,
        "module": spec.module,
    }


def render_text(text: str, values: Mapping[str, str], *, where: str = "<text>") -> str:
    """``text`` with every ``{{ key }}`` replaced; an unknown key raises :class:`RenderError`."""
    try:
        return _Braces(text).substitute(values)
    except KeyError as exc:
        raise RenderError(f"{where}: unknown placeholder {exc.args[0]!r}") from None
    except ValueError as exc:
        raise RenderError(f"{where}: malformed placeholder ({exc})") from None


#: files of ``kinds/<kind>/`` -> where they go in the rendered distribution
KIND_FILES = {
    "module.py": "{{ package }}/{{ module }}.py",
    "test.py": "tests/test_{{ module }}.py",
    "hooks.py": "{{ package }}/hooks.py",  # optional: replaces the common one
}


def render(
    values: Mapping[str, str],
    dest: Path,
    *,
    skeleton: Path = SKELETON,
    kinds_dir: Path = KINDS_DIR,
) -> Path:
    """Write the rendered distribution under ``dest``; returns its folder.

    The common files come from ``skeleton``; the algorithm, its tests, its usage snippet
    (the README's ``{{ usage }}``) and, where a kind needs more than one hook, the hooks
    module come from ``kinds_dir/<kind>/``.
    """
    sources = sorted(p for p in skeleton.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    roots = {skeleton / p.relative_to(skeleton).parts[0] for p in sources}
    if len(roots) != 1:
        raise RenderError(f"{skeleton} must hold exactly one folder, the distribution's")
    (root_src,) = roots
    targets = {
        src: dest
        / Path(
            *(render_text(part, values, where=str(src)) for part in src.relative_to(skeleton).parts)
        )
        for src in sources
    }
    values = dict(values)
    kind_dir = kinds_dir / values["kind"] if "kind" in values else None
    if kind_dir is not None and kind_dir.is_dir():
        usage = kind_dir / "usage.md"
        if usage.is_file():
            values["usage"] = render_text(usage.read_text("utf-8"), values, where=str(usage))
        dist_root = dest / render_text(root_src.name, values, where=str(root_src))
        for name, target in KIND_FILES.items():
            src = kind_dir / name
            if src.is_file():
                rel = render_text(target, values, where=str(src))
                for common, out in list(targets.items()):
                    if out == dist_root / rel:
                        del targets[common]  # the kind's own file replaces the common one
                targets[src] = dist_root / rel
    roots = {dest / t.relative_to(dest).parts[0] for t in targets.values()}
    for root in roots:
        if root.exists():
            raise RenderError(f"{root} already exists; choose another --dest or remove it")
    rendered = {
        target: render_text(src.read_text(encoding="utf-8"), values, where=str(src))
        for src, target in targets.items()
    }  # everything is rendered before anything is written: an error leaves no half project
    for target, text in rendered.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    (root,) = roots
    return root


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="the plugin's short name, e.g. confidence-gap")
    parser.add_argument(
        "--kind",
        default=DEFAULT_KIND,
        choices=sorted(KINDS),
        help=f"the algorithm kind to render (default {DEFAULT_KIND})",
    )
    parser.add_argument("--dest", type=Path, default=Path.cwd(), help="parent folder (cwd)")
    parser.add_argument("--algorithm-name", help="what users write (default: CamelCase name)")
    parser.add_argument(
        "--class-name", help="the algorithm class (default: <CamelCase name><kind suffix>)"
    )
    parser.add_argument("--description", help="one-line description for the package metadata")
    parser.add_argument("--author", default="Your Name")
    parser.add_argument(
        "--core-range", default=DEFAULT_CORE_RANGE, help="supported sedna-core versions"
    )
    args = parser.parse_args(argv)
    try:
        values = context(
            args.name,
            kind=args.kind,
            algorithm_name=args.algorithm_name,
            class_name=args.class_name,
            description=args.description,
            author=args.author,
            core_range=args.core_range,
        )
        root = render(values, args.dest)
    except RenderError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    sys.stdout.write(f"{root}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
