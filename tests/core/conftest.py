"""Helpers for the plugin-system tests: fake plugin distributions on a temporary sys.path entry."""

from __future__ import annotations

import importlib.metadata as md
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

PluginFactory = Callable[..., list[md.EntryPoint]]


@pytest.fixture
def make_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PluginFactory]:
    """Write a plugin distribution (dist-info + hooks module) that importlib.metadata finds.

    ``make_plugin(dist, code, requires=[...])`` returns its ``sedna.plugins`` entry points;
    the module name is unique per call so tests never see each other's modules.
    """
    monkeypatch.syspath_prepend(str(tmp_path))
    created: list[str] = []

    def factory(dist: str, code: str, *, requires: tuple[str, ...] = (), version: str = "1.0"):
        module = f"sp_{dist.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        created.append(module)
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(code))
        info = tmp_path / f"{dist.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        meta = ["Metadata-Version: 2.1", f"Name: {dist}", f"Version: {version}"]
        meta += [f"Requires-Dist: {r}" for r in requires]
        (info / "METADATA").write_text("\n".join(meta) + "\n")
        ep_name = dist.removeprefix("sedna-plugin-")
        (info / "entry_points.txt").write_text(f"[sedna.plugins]\n{ep_name} = {module}\n")
        return [
            ep
            for d in md.distributions(path=[str(tmp_path)])
            if d.name == dist
            for ep in d.entry_points
            if ep.group == "sedna.plugins"
        ]

    yield factory
    for module in created:
        sys.modules.pop(module, None)
