"""Render the sedna-core plugin template into a new, working plugin distribution.

::

    python plugins-contrib/template/render.py confidence-gap --dest ~/src
    # -> ~/src/sedna-plugin-confidence-gap/  pyproject.toml, README.md, package, tests

    cd ~/src/sedna-plugin-confidence-gap
    pip install -e .            # the entry point makes sedna-core find it
    pytest                      # the conformance kit of sedna_core.testing, and more
    sedna plugins list          # sedna-plugin-confidence-gap ... ok ... ConfidenceGap

The template (``skeleton/``) is a plain folder: placeholders ``{{ name }}`` in file contents
and in file and folder names. This script fills them with :class:`string.Template` and
nothing else, so rendering needs only Python: no copier or cookiecutter (and their Jinja2,
prompt and VCS dependencies) on a machine that may be an edge device or a locked-down CI.
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

SKELETON = Path(__file__).resolve().with_name("skeleton")
DEFAULT_CORE_RANGE = ">=0.1,<0.2"
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
    algorithm_name: str | None = None,
    class_name: str | None = None,
    description: str | None = None,
    author: str = "Your Name",
    core_range: str = DEFAULT_CORE_RANGE,
) -> dict[str, str]:
    """The placeholder values for a plugin called ``name`` (lower-case words joined by ``-``)."""
    if not _NAME.match(name):
        raise RenderError(
            f"plugin name {name!r}: use lower-case words joined by '-', e.g. 'confidence-gap'"
        )
    words = name.split("-")
    camel = "".join(w.capitalize() for w in words)
    algorithm = algorithm_name or camel
    cls = class_name or f"{camel}Miner"
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
        or f"{algorithm}: a hard-example miner plugin for sedna-core (top-two margin).",
        "author": author,
        "core_range": core_range,
    }


def render_text(text: str, values: Mapping[str, str], *, where: str = "<text>") -> str:
    """``text`` with every ``{{ key }}`` replaced; an unknown key raises :class:`RenderError`."""
    try:
        return _Braces(text).substitute(values)
    except KeyError as exc:
        raise RenderError(f"{where}: unknown placeholder {exc.args[0]!r}") from None
    except ValueError as exc:
        raise RenderError(f"{where}: malformed placeholder ({exc})") from None


def render(values: Mapping[str, str], dest: Path, *, skeleton: Path = SKELETON) -> Path:
    """Write the rendered distribution under ``dest``; returns its folder."""
    sources = sorted(p for p in skeleton.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    targets = {
        src: dest
        / Path(
            *(render_text(part, values, where=str(src)) for part in src.relative_to(skeleton).parts)
        )
        for src in sources
    }
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
    parser.add_argument("--dest", type=Path, default=Path.cwd(), help="parent folder (cwd)")
    parser.add_argument("--algorithm-name", help="what users write (default: CamelCase name)")
    parser.add_argument("--class-name", help="the miner class (default: <CamelCase>Miner)")
    parser.add_argument("--description", help="one-line description for the package metadata")
    parser.add_argument("--author", default="Your Name")
    parser.add_argument(
        "--core-range", default=DEFAULT_CORE_RANGE, help="supported sedna-core versions"
    )
    args = parser.parse_args(argv)
    try:
        values = context(
            args.name,
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
