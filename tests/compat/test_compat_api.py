"""The `sedna` import package's pieces: ClassFactory bridged into sedna-core's registry,
Context/BaseConfig, FileOps, LOGGER, the module map, and what is deliberately out."""

from __future__ import annotations

import abc
import importlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna_core.errors import ArtifactError, JobError
from sedna_core.plugins import create_algorithm, get_plugin_manager

SEDNA_MODULES = {
    "sedna.core.joint_inference": ["JointInference", "BigModelService", "TSBigModelService"],
    "sedna.core.federated_learning": ["FederatedLearning"],
    "sedna.core.incremental_learning": ["IncrementalLearning"],
    "sedna.core.lifelong_learning": ["LifelongLearning"],
    "sedna.service.server": ["AggregationServer", "InferenceServer", "KBServer"],
    "sedna.datasources": ["BaseDataSource", "TxtDataParse", "CSVDataParse"],
    "sedna.common.class_factory": ["ClassFactory", "ClassType"],
    "sedna.common.config": ["Context", "BaseConfig"],
    "sedna.common.file_ops": ["FileOps"],
    "sedna.common.log": ["LOGGER"],
    "sedna.algorithms.hard_example_mining": ["BaseFilter", "IBTFilter", "CrossEntropyFilter"],
    "sedna.algorithms.aggregation": ["BaseAggregation", "AggClient"],
}


@pytest.mark.parametrize("module", sorted(SEDNA_MODULES))
def test_sedna_module_paths(module: str) -> None:
    mod = importlib.import_module(module)
    for name in SEDNA_MODULES[module]:
        assert getattr(mod, name) is not None


def test_paradigms_are_sedna_core_jobs() -> None:
    from sedna.core.joint_inference import BigModelService, JointInference, TSBigModelService

    import sedna_core

    assert issubclass(JointInference, sedna_core.JointInference)
    assert TSBigModelService is BigModelService
    assert issubclass(BigModelService, sedna_core.BigModelService)


def test_fl_v2_is_out_of_scope_with_a_pointer() -> None:
    from sedna.core.federated_learning import FederatedLearningV2

    with pytest.raises(JobError, match="migrating-from-sedna"):
        FederatedLearningV2(estimator=None)


# -- ClassFactory ------------------------------------------------------------------------------


@pytest.fixture
def registry() -> Iterator[Any]:
    """The ClassFactory, cleaned of what a test registered."""
    from sedna.common.class_factory import ClassFactory

    before = ClassFactory.registered()
    yield ClassFactory
    for type_name, table in ClassFactory.registered().items():
        for alias in table:
            if alias not in before.get(type_name, {}):
                ClassFactory.unregister(type_name, alias)


def test_a_sedna_filter_registered_by_class_factory_is_a_sedna_core_miner(registry: Any) -> None:
    from sedna.algorithms.hard_example_mining import BaseFilter
    from sedna.common.class_factory import ClassType

    @registry.register(ClassType.HEM, alias="DarkFrame")
    class DarkFrameFilter(BaseFilter, abc.ABC):
        def __init__(self, threshold=0.5, **kwargs):
            self.threshold = float(threshold)

        def __call__(self, infer_result=None):
            return float(np.mean(infer_result)) < self.threshold

    assert registry.get_cls(ClassType.HEM, "DarkFrame") is DarkFrameFilter
    # HEM_PARAMETERS-style strings are converted by the default's type
    miner = create_algorithm(
        "hard_example_mining",
        {"method": "DarkFrame", "param": [{"key": "threshold", "value": "0.3"}]},
    )
    assert miner.name == "DarkFrame" and miner.threshold == 0.3  # type: ignore[attr-defined]
    assert miner([0.1, 0.2]) is True and miner([0.9]) is False
    assert miner.mine(np.array([[0.1], [0.9]])).tolist() == [True, False]  # type: ignore[attr-defined]
    pm = get_plugin_manager()
    assert pm.provider_of(type(miner)) == "sedna-compat"


def test_registering_after_the_registry_was_built_is_seen(registry: Any) -> None:
    from sedna.common.class_factory import ClassType

    pm = get_plugin_manager()
    pm.algorithms("hard_example_mining")  # the table exists now

    class Late:
        def __init__(self, **kwargs):
            pass

        def __call__(self, infer_result=None):
            return True

    registry.register_cls(Late, ClassType.HEM, alias="LateFilter")
    assert "LateFilter" in pm.algorithms("hard_example_mining")
    registry.unregister(ClassType.HEM, "LateFilter")
    assert "LateFilter" not in pm.algorithms("hard_example_mining")


def test_a_sedna_aggregation_is_a_sedna_core_aggregation(registry: Any) -> None:
    from sedna.algorithms.aggregation import BaseAggregation
    from sedna.common.class_factory import ClassType

    @registry.register(ClassType.FL_AGG, alias="SednaMedian")
    class Median(BaseAggregation):
        def aggregate(self, clients):
            self.total_size = sum(c.num_samples for c in clients)
            return [
                np.median(np.stack([c.weights[i] for c in clients]), axis=0)
                for i in range(len(clients[0].weights))
            ]

    agg = create_algorithm("aggregation", "SednaMedian")
    glob = [np.zeros((2,), np.float32), np.zeros((1,), np.float32)]
    updates = [([np.full(2, v, np.float32), np.full(1, v, np.float32)], 10) for v in (1, 2, 9)]
    out = agg.aggregate(glob, updates)  # type: ignore[attr-defined]
    assert [o.tolist() for o in out] == [[2.0, 2.0], [2.0]]
    assert out[0].dtype == np.float32


def test_sedna_core_classes_register_as_they_are_and_unknown_names_raise(registry: Any) -> None:
    from sedna.common.class_factory import ClassType

    from sedna_core.testing import ScriptedMiner

    registry.register_cls(ScriptedMiner, ClassType.HEM, alias=ScriptedMiner.name)
    assert ScriptedMiner in get_plugin_manager().algorithms("hard_example_mining").values()
    ibt = registry.get_cls(ClassType.HEM, "IBT")  # a sedna-core plugin's miner, by Sedna's name
    assert ibt.name == "IBT"
    with pytest.raises(ValueError, match="NoSuchFilter"):
        registry.get_cls(ClassType.HEM, "NoSuchFilter")
    assert registry.is_exists(ClassType.HEM, ScriptedMiner.name)


def test_named_callbacks(registry: Any) -> None:
    from sedna.common.class_factory import ClassType
    from sedna.core._common import callback

    @registry.register(ClassType.CALLBACK, alias="double")
    class Double:
        def __new__(cls, result):
            return [2 * r for r in result]

    assert callback("double")([1, 2]) == [2, 4]
    assert callback(None) is None


# -- Context / BaseConfig ----------------------------------------------------------------------


def test_context_reads_the_environment_live(monkeypatch: pytest.MonkeyPatch) -> None:
    from sedna.common.config import BaseConfig, Context

    monkeypatch.setenv("INPUT_SHAPE", "416,736")
    assert Context.get_parameters("input_shape") == "416,736"
    monkeypatch.setenv("EMPTY", "")
    assert Context.get_parameters("EMPTY", "d") == "d"
    monkeypatch.setenv("HEM_NAME", "IBT")
    monkeypatch.setenv("HEM_PARAMETERS", json.dumps([{"key": "threshold_img", "value": "0.8"}]))
    assert Context.get_algorithm_from_api("HEM", threshold_box=0.5) == {
        "method": "IBT",
        "param": {"threshold_img": "0.8", "threshold_box": 0.5},
    }
    monkeypatch.setenv("HEM_PARAMETERS", "not json")
    assert Context.get_algorithm_from_api("HEM") == {"method": "IBT", "param": {}}
    monkeypatch.delenv("HEM_NAME")
    assert Context.get_algorithm_from_api("HEM") == {}
    monkeypatch.setenv("TRAIN_DATASET_URL", "/data/train.txt")
    assert BaseConfig.train_dataset_url == "/data/train.txt"
    monkeypatch.setenv("TRAIN_DATASET_URL", "/data/other.txt")  # read when accessed
    assert BaseConfig().train_dataset_url == "/data/other.txt"
    assert BaseConfig.data_path_prefix == "/home/data"


def test_hem_selection_follows_sedna(monkeypatch: pytest.MonkeyPatch) -> None:
    from sedna.core._common import hem_spec
    from sedna.core.joint_inference import JointInference

    monkeypatch.delenv("HEM_NAME", raising=False)
    assert JointInference.get_hem_algorithm_from_config(threshold_img=0.9) == {}
    assert hem_spec({}) is None
    assert hem_spec({"param": {"threshold_img": 0.9}})["method"] == "IBT"
    monkeypatch.setenv("HEM_NAME", "CrossEntropy")
    assert hem_spec(None) == {"method": "CrossEntropy", "param": {}}


# -- FileOps, LOGGER, datasources -----------------------------------------------------------


def test_file_ops(tmp_path: Path) -> None:
    from sedna.common.file_ops import FileOps

    src = tmp_path / "a.txt"
    src.write_text("hello")
    assert FileOps.exists(str(src)) and not FileOps.exists(str(tmp_path / "nope"))
    assert FileOps.join_path("s3://bucket/a", "/b", "c") == "s3://bucket/a/b/c"
    assert FileOps.join_path(str(tmp_path), "/x") == str(tmp_path / "x")
    dst = FileOps.download(str(src), str(tmp_path / "copy.txt"))
    assert Path(dst).read_text() == "hello"
    up = FileOps.upload(str(src), str(tmp_path / "up") + "/")
    assert Path(up).read_text() == "hello" and src.exists()  # the source stays by default
    folder = tmp_path / "out"
    FileOps.clean_folder([str(folder)], clean=False)
    assert folder.is_dir()
    assert FileOps.remove_path_prefix("/home/data/m.pb", "/home/data") == "/m.pb"
    assert len(FileOps.get_file_hash(str(src))) == 32
    with pytest.raises(ArtifactError, match="not found"):
        FileOps.download(str(tmp_path / "missing"), str(tmp_path / "x"))
    with pytest.raises(ArtifactError, match="unpickles"):
        FileOps.load(str(src))
    with pytest.raises(ArtifactError, match="unpickles"):
        FileOps.dump({"a": 1}, str(tmp_path / "d.pkl"))


def test_logger_is_printf_style(caplog: pytest.LogCaptureFixture) -> None:
    from sedna.common.log import LOGGER

    with caplog.at_level(logging.INFO, logger="sedna"):
        LOGGER.info("round %s of %s", 1, 3)
    assert "round 1 of 3" in caplog.text


def test_datasources_keep_sedna_signatures(tmp_path: Path) -> None:
    from sedna.datasources import BaseDataSource, TxtDataParse

    data = BaseDataSource("test")
    assert data.data_type == "test" and data.is_test_data and len(data) == 0
    index = tmp_path / "index.txt"
    index.write_text("a.jpg 1\nb.jpg 0\n")
    raw = TxtDataParse(data_type="train", func=lambda line: f"/root/{line}")
    raw.parse(str(index), use_raw=True)
    assert raw.x.tolist() == ["/root/a.jpg 1", "/root/b.jpg 0"] and raw.y is None
