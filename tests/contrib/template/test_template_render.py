"""The plugin template renders a complete distribution whose own tests and linter pass."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "plugins-contrib" / "template"


def _render_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("sedna_template_render", TEMPLATE / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _render_module()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("rendered")
    values = render.context("confidence-gap", author="Test Author")
    return render.render(values, dest)


def test_layout_and_names(rendered: Path) -> None:
    assert rendered.name == "sedna-plugin-confidence-gap"
    files = sorted(str(p.relative_to(rendered)) for p in rendered.rglob("*") if p.is_file())
    assert files == [
        "README.md",
        "pyproject.toml",
        "sedna_plugin_confidence_gap/__init__.py",
        "sedna_plugin_confidence_gap/hooks.py",
        "sedna_plugin_confidence_gap/miner.py",
        "tests/test_miner.py",
        "tests/test_sedna_plugin_confidence_gap.py",
    ]
    pyproject = (rendered / "pyproject.toml").read_text()
    assert 'name = "sedna-plugin-confidence-gap"' in pyproject
    assert 'confidence_gap = "sedna_plugin_confidence_gap.hooks"' in pyproject
    assert '"sedna-core>=0.1,<0.2"' in pyproject
    miner = (rendered / "sedna_plugin_confidence_gap" / "miner.py").read_text()
    assert 'name: ClassVar[str] = "ConfidenceGap"' in miner
    assert "class ConfidenceGapMiner(BaseHardExampleMiner)" in miner


def test_no_placeholder_survives(rendered: Path) -> None:
    for path in rendered.rglob("*"):
        assert "{{" not in path.name
        if path.is_file():
            assert "{{" not in path.read_text(), path


def test_pyproject_is_valid_toml_with_the_entry_point(rendered: Path) -> None:
    import tomllib

    meta = tomllib.loads((rendered / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["sedna.plugins"] == {
        "confidence_gap": "sedna_plugin_confidence_gap.hooks"
    }


def test_rendered_tests_pass_with_the_conformance_kit(rendered: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(rendered)}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=rendered,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    passed = int(proc.stdout.strip().splitlines()[-1].split()[0])
    assert passed >= 10  # the conformance kit's checks are among them


def test_the_template_knows_every_kind() -> None:
    """render.py's kind table is sedna_core.algorithms.KINDS (a new kind needs a template)."""
    from sedna_core.algorithms import KINDS

    assert {k: v.hook for k, v in render.KINDS.items()} == {k: h for k, (_, h) in KINDS.items()}
    for kind in KINDS:
        folder = TEMPLATE / "kinds" / kind
        assert {"module.py", "test.py", "usage.md"} <= {p.name for p in folder.iterdir()}, kind


@pytest.fixture(scope="module")
def every_kind(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    dest = tmp_path_factory.mktemp("kinds")
    return {
        kind: render.render(render.context(f"k-{kind.replace('_', '-')}", kind=kind), dest)
        for kind in render.KINDS
    }


def test_every_kind_renders_its_algorithm_hook_and_tests(every_kind: dict[str, Path]) -> None:
    from sedna_core.algorithms import KINDS

    for kind, root in every_kind.items():
        spec = render.KINDS[kind]
        package = root.name.replace("sedna-plugin-", "sedna_plugin_").replace("-", "_")
        module = (root / package / f"{spec.module}.py").read_text()
        assert f"({KINDS[kind][0].__name__})" in module or "Aggregation)" in module, kind
        assert f"def {spec.hook}()" in (root / package / "hooks.py").read_text(), kind
        assert (root / "tests" / f"test_{spec.module}.py").is_file(), kind
        readme = (root / "README.md").read_text()
        assert f"kind `{kind}`" in readme and "{{" not in readme, kind


def test_aggregation_with_a_chosen_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "acme",
        "--kind",
        "aggregation",
        "--algorithm-name",
        "GeoMedian",
        "--dest",
        str(tmp_path),
    ]
    assert render.main(args) == 0
    root = Path(capsys.readouterr().out.strip())
    module = (root / "sedna_plugin_acme" / "aggregation.py").read_text()
    assert 'name: ClassVar[str] = "GeoMedian"' in module
    assert "class AcmeAggregation(AllAtOnceAggregation)" in module
    with pytest.raises(render.RenderError, match="kind 'nope'"):
        render.context("acme", kind="nope")


@pytest.mark.skipif(shutil.which("ruff", path=str(Path(sys.executable).parent)) is None,
                    reason="ruff is not installed next to this Python")  # fmt: skip
def test_every_kind_is_lint_clean(every_kind: dict[str, Path]) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    for kind, root in every_kind.items():
        for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
            proc = subprocess.run(
                [str(ruff), *args], cwd=root, capture_output=True, text=True, timeout=60
            )
            assert proc.returncode == 0, f"{kind}: {proc.stdout}{proc.stderr}"


@pytest.mark.skipif(shutil.which("ruff", path=str(Path(sys.executable).parent)) is None,
                    reason="ruff is not installed next to this Python")  # fmt: skip
def test_rendered_project_is_lint_clean(rendered: Path) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    for args in (["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]):
        proc = subprocess.run(
            [str(ruff), *args], cwd=rendered, capture_output=True, text=True, timeout=60
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("Confidence_Gap", {}, "lower-case words joined by '-'"),
        ("gap", {"algorithm_name": "a:b"}, "algorithm name"),
        ("gap", {"class_name": "class"}, "not a Python identifier"),
        ("gap", {"author": 'Quote "me"'}, "without quotes"),
    ],
)
def test_bad_options_are_refused(name: str, options: dict[str, str], message: str) -> None:
    with pytest.raises(render.RenderError, match=message):
        render.context(name, **options)


def test_existing_destination_and_unknown_placeholders(tmp_path: Path) -> None:
    values = render.context("gap")
    render.render(values, tmp_path)
    with pytest.raises(render.RenderError, match="already exists"):
        render.render(values, tmp_path)
    skeleton = tmp_path / "skeleton" / "{{dist_name}}"
    skeleton.mkdir(parents=True)
    (skeleton / "a.txt").write_text("ok {{ dist_name }}\n")
    (skeleton / "b.txt").write_text("bad {{ nope }}\n")
    out = tmp_path / "out"
    with pytest.raises(render.RenderError, match="unknown placeholder 'nope'"):
        render.render(values, out, skeleton=tmp_path / "skeleton")
    assert not out.exists()  # nothing written when a file fails to render
    assert render.render_text("{{{{ literal", values) == "{{ literal"


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert render.main(["margin-probe", "--dest", str(tmp_path), "--algorithm-name", "MP"]) == 0
    out = Path(capsys.readouterr().out.strip())
    assert out == tmp_path / "sedna-plugin-margin-probe"
    assert 'name: ClassVar[str] = "MP"' in (out / "sedna_plugin_margin_probe/miner.py").read_text()
    assert render.main(["Bad"]) == 2
    assert "error:" in capsys.readouterr().err
