"""`sedna kb import-sedna`: a trusted local Sedna knowledge base (joblib-pickled index.pkl and
model files) becomes sedna-core's JSON task index and artifact store.

The fixture knowledge base is written the way Sedna writes it: ``joblib.dump`` of Sedna's
``Task``/``TaskGroup``/``Model`` objects, pickled under Sedna's module paths (stand-in classes
registered there while the fixture is written), with numpy samples and a pandas-like frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna_core.cli.kb_import import register_import_command
from sedna_core.knowledge_base import validate_index
from sedna_core.migration import (
    MigrationError,
    import_sedna_kb,
    load_index,
)

ARTIFACT = "sedna.algorithms.seen_task_learning.artifact"
ATTRS = ["Season", "Cooling startegy_building level"]


def _sedna_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Classes shaped like Sedna's, importable under Sedna's module paths."""
    module = types.ModuleType(ARTIFACT)

    class Task:
        def __init__(self, entry: str, samples: Any, meta_attr: Any = None) -> None:
            self.entry, self.samples, self.meta_attr = entry, samples, meta_attr
            self.test_samples, self.model, self.result = None, None, None

    class TaskGroup:
        def __init__(self, entry: str, tasks: list[Any]) -> None:
            self.entry, self.tasks = entry, tasks
            self.samples, self.model = None, None

    class Model:
        def __init__(self, index: int, entry: str, model: str, result: Any) -> None:
            self.index, self.entry, self.model, self.result = index, entry, model, result
            self.meta_attr = None

    class DataFrame:  # stands for pandas: the importer must keep it opaque
        def __init__(self, rows: list[Any]) -> None:
            self.rows = rows

    for cls in (Task, TaskGroup, Model):
        cls.__module__, cls.__qualname__ = ARTIFACT, cls.__name__
        setattr(module, cls.__name__, cls)
    frames = types.ModuleType("pandas.core.frame")
    DataFrame.__module__, DataFrame.__qualname__ = frames.__name__, "DataFrame"
    frames.DataFrame = DataFrame  # type: ignore[attr-defined]
    parent = types.ModuleType("sedna.algorithms.seen_task_learning")
    monkeypatch.setitem(sys.modules, parent.__name__, parent)
    monkeypatch.setitem(sys.modules, ARTIFACT, module)
    for name in ("pandas", "pandas.core"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "pandas.core.frame", frames)
    module.DataFrame = DataFrame  # type: ignore[attr-defined]
    return module


def _samples(n: int, seed: int) -> Any:
    from sedna.datasources import BaseDataSource  # Sedna's path: sedna.datasources

    rng = np.random.default_rng(seed)
    data = BaseDataSource(data_type="train")
    data.x = rng.normal(size=(n, 2))
    data.y = rng.integers(0, 3, size=n)
    return data


@pytest.fixture
def sedna_kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import joblib

    kb = tmp_path / "kbdata"
    with monkeypatch.context() as patch:  # Sedna's module paths exist only while dumping
        _write_kb(_sedna_module(patch), kb, joblib)
    return kb


def _write_kb(art: types.ModuleType, kb: Path, joblib: Any) -> None:
    (kb / "seen_task").mkdir(parents=True)
    summer, winter = "Summer_Air-Conditioned", "Winter_Naturally-Ventilated"
    (kb / "seen_task" / f"{summer}.model").write_text(json.dumps({"0": [26.0, 50.0]}))
    (kb / f"{winter}.model").write_text(json.dumps({"2": [17.0, 40.0]}))
    groups = []
    for i, (entry, values, model_ref) in enumerate(
        [
            (summer, ["Summer", "Air Conditioned"],
             f"/home/data/output/seen_task/{summer}.model"),  # the old pod's path
            (winter, ["Winter", "Naturally Ventilated"],
             f"http://kb.sedna:9020/knowledgebase/file/download?files={winter}.model"
             f"&name={winter}.model"),  # a KB download URL: resolved locally, never fetched
        ]
    ):  # fmt: skip
        task = art.Task(entry, _samples(12 + i, i), values)
        group = art.TaskGroup(entry, [task])
        group.samples = task.samples if i == 0 else art.DataFrame([[1, 2]])
        group.model = art.Model(i, entry, model_ref, {"mlogloss": 0.25 + i})
        groups.append(group)
    index = {
        "seen_task": {"task_groups": [*groups, groups[1]], "extractor": {summer: 0, winter: 1}},
        "unseen_task": {"task_groups": [], "extractor": None},
        "create_time": "1700000000.5",
    }
    joblib.dump(index, kb / "index.pkl")


def test_the_restricted_reader_builds_stand_ins_and_arrays(sedna_kb: Path) -> None:
    doc, opaque = load_index(sedna_kb / "index.pkl")
    group = doc["seen_task"]["task_groups"][0]
    assert type(group).pickled_as == f"{ARTIFACT}.TaskGroup"
    samples = group.tasks[0].samples
    assert isinstance(samples.x, np.ndarray) and samples.x.shape == (12, 2)  # joblib's layout
    assert opaque == ["pandas.core.frame.DataFrame"]


def test_import_writes_a_valid_index_and_the_models(sedna_kb: Path, tmp_path: Path) -> None:
    report = import_sedna_kb(sedna_kb, tmp_path / "new", attribute=ATTRS, backend="sklearn")
    doc = validate_index(json.loads(report.index_file.read_text()))
    assert (report.groups, report.tasks, report.models) == (2, 2, 2)
    groups = doc["seen_task"]["task_groups"]
    assert [g["entry"] for g in groups] == ["Summer_Air-Conditioned", "Winter_Naturally-Ventilated"]
    assert groups[0]["tasks"][0]["meta_attr"] == {
        "Season": "Summer",
        "Cooling startegy_building level": "Air Conditioned",
    }
    assert groups[0]["tasks"][0]["sample_num"] == 12
    assert groups[0]["model"]["metrics"] == {"mlogloss": 0.25}
    assert groups[1]["model"]["format"] == "model"
    stored = Path(groups[1]["model"]["url"]).read_text()
    assert json.loads(stored) == {"2": [17.0, 40.0]}
    allocator = doc["seen_task"]["allocator"]
    assert allocator["method"] == "TaskAllocationByDataAttr"
    assert {"key": ["Winter", "Naturally Ventilated"], "task_id": 1} in allocator["state"]["table"]
    assert doc["create_time"] == 1700000000.5 and doc["version"] == 1
    assert (tmp_path / "new" / "index-1.json").is_file()
    assert any("appears twice" in w for w in report.warnings)
    assert report.opaque == ["pandas.core.frame.DataFrame"]


def test_the_imported_allocator_routes_by_attribute(sedna_kb: Path, tmp_path: Path) -> None:
    from sedna_core.plugins import create_algorithm

    report = import_sedna_kb(sedna_kb, tmp_path / "new", attribute=ATTRS)
    spec = json.loads(report.index_file.read_text())["seen_task"]["allocator"]
    alloc = create_algorithm("task_allocation", {"method": spec["method"], "param": spec["param"]})
    alloc.set_state(spec["state"])  # type: ignore[attr-defined]
    table = {
        "Season": np.array(["Winter", "Summer", "Spring"]),
        "Cooling startegy_building level": np.array(
            ["Naturally Ventilated", "Air Conditioned", "Air Conditioned"]
        ),
    }
    ids = alloc.allocate(table)  # type: ignore[attr-defined]
    assert ids[:2].tolist() == [1, 0] and ids[2] < 0  # an unknown combination is unseen


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("http://kb.sedna:9020/knowledgebase/index.pkl", "not a local path"),
        ("s3://bucket/kb/index.pkl", "not a local path"),
        ("/nonexistent/kb", "does not exist"),
    ],
)
def test_only_local_files(source: str, message: str, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match=message):
        import_sedna_kb(source, tmp_path / "new")


def test_missing_attribute_names_and_models_are_explained(sedna_kb: Path, tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="--attribute"):
        import_sedna_kb(sedna_kb, tmp_path / "a")
    (sedna_kb / "seen_task" / "Summer_Air-Conditioned.model").unlink()
    with pytest.raises(MigrationError, match=r"model file .* not found"):
        import_sedna_kb(sedna_kb, tmp_path / "b", attribute=ATTRS)


def test_a_pickle_cannot_run_code(tmp_path: Path) -> None:
    import pickle

    class Exploit:
        def __reduce__(self) -> Any:
            return (print, ("pwned",))  # os.system in a real attack

    (tmp_path / "index.pkl").write_bytes(pickle.dumps({"seen_task": {"task_groups": [Exploit()]}}))
    _, opaque = load_index(tmp_path / "index.pkl")
    assert opaque == ["builtins.print"]  # a record of the call, never the call
    with pytest.raises(MigrationError, match="no seen task groups"):
        import_sedna_kb(tmp_path, tmp_path / "new")


def test_compressed_and_garbage_files(tmp_path: Path) -> None:
    (tmp_path / "gz.pkl").write_bytes(b"\x1f\x8b\x08\x00rest")
    with pytest.raises(MigrationError, match="compressed"):
        load_index(tmp_path / "gz.pkl")
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04not a pickle")
    with pytest.raises(MigrationError, match="not a pickle"):
        load_index(tmp_path / "bad.pkl")


def test_command_warns_and_needs_trust(
    sedna_kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    parser = argparse.ArgumentParser(prog="sedna kb")
    register_import_command(parser.add_subparsers(dest="kb_command"))
    args = parser.parse_args(["import-sedna", str(sedna_kb), str(tmp_path / "new")])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "UNPICKLES" in err and "--trusted" in err
    args = parser.parse_args(
        ["import-sedna", str(sedna_kb), str(tmp_path / "new"), "--trusted",
         "--attribute", ATTRS[0], "--attribute", ATTRS[1]]
    )  # fmt: skip
    assert args.func(args) == 0
    captured = capsys.readouterr()
    assert "2 task group(s)" in captured.out and "UNPICKLES" in captured.err
    assert args.func(args) == 1  # the destination holds an index now
    assert "already holds a task index" in capsys.readouterr().err
