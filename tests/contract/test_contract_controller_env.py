"""The controller contract: every variable Sedna's controllers and SDK use (the reference table,
``sedna-behaviour.md`` §1.2) is read by the job it belongs to, or deliberately left out with a
reason; and every job reports to the local controller in Sedna's message shape.

The table below is the reference, per job kind. A variable's "reader" is the configuration
class that declares it (``env_names()``); a few are read by a module (logging, S3 access), and
those are checked by behaviour.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna_core.config import JobConfig, Settings
from sedna_core.config.federated import AggregationServerConfig, FederatedConfig
from sedna_core.config.incremental import IncrementalConfig
from sedna_core.config.joint_inference import BigModelServiceConfig, JointInferenceConfig
from sedna_core.config.lifelong import KnowledgeBaseConfig, LifelongConfig
from sedna_core.errors import ConfigError

#: §1.2: what every worker reads (Sedna's BaseConfig / JobBase)
COMMON = {
    "DEVICE_CATEGORY", "BACKEND_TYPE", "LC_SERVER", "ORIGINAL_DATASET_URL", "TRAIN_DATASET_URL",
    "TEST_DATASET_URL", "DATA_PATH_PREFIX", "NAMESPACE", "WORKER_NAME", "SERVICE_NAME",
    "JOB_NAME", "MODEL_URL", "MODEL_NAME", "MODEL_LOAD_MODE", "MODEL_HOT_UPDATE",
    "MODEL_HOT_UPDATE_CONFIG", "MODEL_POLL_PERIOD_SECONDS",
}  # fmt: skip
#: read by a module rather than a configuration class (checked by behaviour below)
MODULE_READ = {"LOG_LEVEL", "S3_ENDPOINT_URL", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY"}
#: §1.2 rows per job kind, and the configuration classes of that kind's workers
KINDS: dict[str, tuple[set[str], tuple[type[Settings], ...]]] = {
    "jointinferenceservice": (
        {"HEM_NAME", "HEM_PARAMETERS", "MINING_MODE", "BIG_MODEL_IP", "BIG_MODEL_PORT",
         "LC_PERIOD", "BIG_MODEL_BIND_IP", "BIG_MODEL_BIND_PORT"},
        (JointInferenceConfig, BigModelServiceConfig),
    ),
    "federatedlearningjob": (
        {"AGG_PROTOCOL", "AGG_IP", "AGG_PORT", "CONNECT_TIMEOUT", "AGG_BIND_IP", "AGG_BIND_PORT",
         # the example's server variables (§11), which its aggregation worker passes on
         "exit_round", "participants_count", "aggregation_algorithm"},
        (FederatedConfig, AggregationServerConfig),
    ),
    "incrementallearningjob": (
        {"HEM_NAME", "HEM_PARAMETERS", "MODEL_URLS", "HE_SAVED_URL"},
        (IncrementalConfig,),
    ),
    "lifelonglearningjob": (
        {"KB_SERVER", "OUTPUT_URL", "HAS_COMPLETED_INITIAL_TRAINING", "CLOUD_KB_INDEX",
         "MIN_TRAIN_SAMPLE", "MODEL_URLS", "operator", "model_threshold", "edge_output_url",
         "unseen_save_url", "MODEL_POLL_PERIOD_SECONDS",
         # the knowledge-base service
         "KB_URL", "KnowledgeBaseServer", "KnowledgeBasePath"},
        (LifelongConfig, KnowledgeBaseConfig),
    ),
}  # fmt: skip
#: §1.2 variables deliberately not read, and why (docs/migrating-from-sedna.md says the same)
NOT_READ = {
    "PARAMETERS": "it may name a .py file that Sedna imports and runs; settings come from "
    "explicit variables instead",
    "PRETRAINED_MODEL_URL": "only the Plato-based FL v2 example used it (out of scope)",
    "TRANSMITTER": "FL v2 (Plato) transmitter choice, out of scope",
    "AGG_DATA_PATH": "FL v2 (Plato) S3 exchange path, out of scope",
    "CUDA_VISIBLE_DEVICES": "the frameworks read it themselves; sedna-core never rewrites the "
    "environment (Sedna wrote DEVICE_CATEGORY back)",
    "MODEL_PATH": "MODEL_URL and MODEL_NAME say the same (Sedna's undocumented override)",
    "STATUS_IP": "the robot-status polling thread (UnseenSampleDetection) is a broken placeholder",
    "IMAGE_TOPIC_URL": "same placeholder thread as STATUS_IP",
    "batch_size": "multi-edge inference, out of scope",
    "KAFKA_ENABLED": "multi-edge inference, out of scope",
    "KAFKA_BIND_IPS": "multi-edge inference, out of scope",
    "KAFKA_BIND_PORTS": "multi-edge inference, out of scope",
    "REID_MODEL_BIND_URL": "multi-edge inference, out of scope",
    "FE_MODEL_BIND_URL": "multi-edge inference, out of scope",
    "DET_MODEL_BIND_URL": "multi-edge inference, out of scope",
}


def _read_by(classes: tuple[type[Settings], ...]) -> set[str]:
    names: set[str] = set()
    for cls in (JobConfig, *classes):
        for variables in cls.env_names().values():
            names.update(v.upper() for v in variables)
    return names


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_reference_variable_of_the_job_kind_is_read(kind: str) -> None:
    specific, classes = KINDS[kind]
    read = _read_by(classes)
    missing = sorted(v for v in (COMMON | specific) if v.upper() not in read)
    assert missing == [], f"{kind}: no configuration class reads {missing}"


def test_left_out_variables_are_really_not_read() -> None:
    every: set[str] = set()
    for _, classes in KINDS.values():
        every |= _read_by(classes)
    assert sorted(v for v in NOT_READ if v.upper() in every) == []
    assert not (set(NOT_READ) & (COMMON | MODULE_READ))


# -- values flow from the environment into the settings, as Sedna's controllers give them ----

POD_ENV = {
    "JOB_NAME": "helmet", "WORKER_NAME": "edge-0", "NAMESPACE": "ns", "LC_SERVER": "http://lc:9100",
    "MODEL_URL": "/models/m.keras", "MODEL_NAME": "m.keras", "DATA_PATH_PREFIX": "/home/data",
    "TRAIN_DATASET_URL": "/d/train.txt", "TEST_DATASET_URL": "/d/test.txt",
    "ORIGINAL_DATASET_URL": "/d/orig.txt", "BACKEND_TYPE": "KERAS", "DEVICE_CATEGORY": "GPU",
    "MODEL_LOAD_MODE": "file", "MODEL_HOT_UPDATE": "true", "MODEL_HOT_UPDATE_CONFIG": "/h.json",
    "MODEL_POLL_PERIOD_SECONDS": "15",
}  # fmt: skip


@pytest.mark.parametrize(
    "cls", [JointInferenceConfig, FederatedConfig, IncrementalConfig, LifelongConfig]
)
def test_common_variables_reach_every_job_config(cls: type[JobConfig]) -> None:
    cfg = cls.from_env(POD_ENV)
    assert (cfg.job_name, cfg.worker, cfg.namespace) == ("helmet", "edge-0", "ns")
    assert (cfg.lc_server, cfg.model_url, cfg.model_name) == (
        "http://lc:9100",
        "/models/m.keras",
        "m.keras",
    )
    assert (cfg.train_dataset_url, cfg.test_dataset_url) == ("/d/train.txt", "/d/test.txt")
    assert cfg.original_dataset_url == "/d/orig.txt"
    assert (cfg.backend_type, cfg.device_category, cfg.model_load_mode) == ("KERAS", "GPU", "file")
    assert cfg.model_hot_update is True and cfg.model_hot_update_config == "/h.json"
    assert cfg.model_poll_period == 15.0
    # SERVICE_NAME counts when JOB_NAME is unset (Sedna meant it for services)
    assert cls.from_env({"SERVICE_NAME": "svc"}).job_name == "svc"


def test_kind_specific_values() -> None:
    crd_params = json.dumps([{"key": "threshold_img", "value": "0.9"}])
    ji = JointInferenceConfig.from_env(
        {"BIG_MODEL_IP": "10.0.0.5", "BIG_MODEL_PORT": "30500", "HEM_NAME": "IBT",
         "HEM_PARAMETERS": crd_params, "MINING_MODE": "mining-then-inference", "LC_PERIOD": "5"}
    )  # fmt: skip
    assert ji.cloud_base_url == "http://10.0.0.5:30500"
    assert (ji.hem_name, ji.hem_parameters) == ("IBT", [{"key": "threshold_img", "value": "0.9"}])
    assert (ji.mining_mode, ji.lc_period) == ("mining-then-inference", 5.0)
    cloud = BigModelServiceConfig.from_env(
        {"BIG_MODEL_BIND_IP": "0.0.0.0", "BIG_MODEL_BIND_PORT": "5000"}
    )
    assert (cloud.host, cloud.port) == ("0.0.0.0", 5000)

    fl = FederatedConfig.from_env(
        {"AGG_PROTOCOL": "wss", "AGG_IP": "agg.sedna", "AGG_PORT": "7363", "CONNECT_TIMEOUT": "9"}
    )
    assert (fl.address, fl.connect_timeout) == ("wss://agg.sedna:7363", 9.0)
    server = AggregationServerConfig.from_env(
        {"AGG_BIND_IP": "0.0.0.0", "AGG_BIND_PORT": "7363", "exit_round": "3",
         "participants_count": "2", "aggregation_algorithm": "FedAvg"}
    )  # fmt: skip
    assert (server.host, server.port, server.exit_round) == ("0.0.0.0", 7363, 3)
    assert (server.participants_count, server.aggregation) == (2, "FedAvg")

    il = IncrementalConfig.from_env(
        {"HEM_NAME": "Random", "HEM_PARAMETERS": crd_params, "MODEL_URLS": "/a.keras;/b.keras",
         "HE_SAVED_URL": "/he"}
    )  # fmt: skip
    assert il.model_urls == ("/a.keras", "/b.keras") and il.hard_example_dir == "/he"
    assert il.hem_name == "Random"

    ll = LifelongConfig.from_env(
        {"KB_SERVER": "http://kb:9020", "OUTPUT_URL": "/out", "HAS_COMPLETED_INITIAL_TRAINING":
         "true", "CLOUD_KB_INDEX": "/out/index.json", "MIN_TRAIN_SAMPLE": "20", "MODEL_URLS":
         "/out/index.json", "operator": ">", "model_threshold": "0.5", "edge_output_url": "/kb",
         "unseen_save_url": "/unseen"}
    )  # fmt: skip
    assert (ll.kb_server, ll.output_url, ll.has_completed_initial_training) == (
        "http://kb:9020", "/out", True,
    )  # fmt: skip
    assert (ll.min_train_sample, ll.operator, ll.model_threshold) == (20, ">", 0.5)
    assert (ll.edge_output_url, ll.unseen_save_url) == ("/kb", "/unseen")
    kb = KnowledgeBaseConfig.from_env(
        {"KnowledgeBasePath": "/kbdata", "KB_URL": "sqlite:////kbdata/kb.sqlite3"}
    )
    assert kb.data_dir == "/kbdata"


def test_module_read_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from sedna_core.artifacts import s3_storage_options
    from sedna_core.log import configure_logging

    opts = s3_storage_options(
        {"S3_ENDPOINT_URL": "http://minio:9000", "ACCESS_KEY_ID": "k", "SECRET_ACCESS_KEY": "s"}
    )
    assert opts == {"endpoint_url": "http://minio:9000", "key": "k", "secret": "s"}
    monkeypatch.setenv("LOG_LEVEL", "NOT-A-LEVEL")
    with pytest.raises(ConfigError, match="LOG_LEVEL"):  # checked before anything changes
        configure_logging(force=True)


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BIG_MODEL_PORT"):
        JointInferenceConfig.from_env({"BIG_MODEL_PORT": "port"})
    with pytest.raises(ConfigError, match="MIN_TRAIN_SAMPLE"):
        LifelongConfig.from_env({"MIN_TRAIN_SAMPLE": "-1"})


# -- reports reach a local controller on loopback, in Sedna's shape --------------------------


class _LC:
    def __init__(self) -> None:
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.cond = threading.Condition()
        lc = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lc.cond:
                    lc.messages.append((self.path, body))
                    lc.cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, kind: str) -> tuple[str, dict[str, Any]]:
        with self.cond:
            assert self.cond.wait_for(lambda: any(m["kind"] == kind for _, m in self.messages), 30)
            return next((p, m) for p, m in self.messages if m["kind"] == kind)


@pytest.fixture
def lc() -> Iterator[_LC]:
    stub = _LC()
    yield stub
    stub.server.shutdown()
    stub.server.server_close()


def _data(n: int = 40) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3))
    return x, (x[:, 0] > 0).astype(int)


def _check(path: str, msg: dict[str, Any], job_kind: str, worker: str, job: str) -> None:
    assert path == f"/sedna/workers/{worker}/info"
    assert msg["name"] == worker and msg["ownerName"] == job and msg["namespace"] == "ns"
    assert msg["ownerKind"] == job_kind


def test_joint_inference_reports_its_counters(lc: _LC) -> None:
    from sedna_core.jobs.joint_inference import JointInference
    from sedna_core.testing import InMemoryEstimator

    x, y = _data()
    est = InMemoryEstimator()
    est.train((x, y))
    cfg = JointInferenceConfig.from_env(
        {"LC_SERVER": lc.url, "WORKER_NAME": "edge-0", "NAMESPACE": "ns", "JOB_NAME": "ji"}
    )
    with JointInference(est, config=cfg) as ji:
        ji.inference(x[:1])
    path, msg = lc.wait("inference")
    _check(path, msg, "jointinferenceservice", "edge-0", "ji")
    assert msg["ownerInfo"]["inferenceNumber"] == 1 and msg["results"] == []
    assert "status" not in msg  # Sedna's periodic report has no status


def test_incremental_learning_reports_training(lc: _LC, tmp_path: Path) -> None:
    from sedna_core.jobs.incremental import IncrementalLearning
    from sedna_core.testing import InMemoryEstimator

    cfg = IncrementalConfig.from_env(
        {"LC_SERVER": lc.url, "WORKER_NAME": "train-0", "NAMESPACE": "ns", "JOB_NAME": "il",
         "SEDNA_IL_WORKSPACE": str(tmp_path)}
    )  # fmt: skip
    with IncrementalLearning(InMemoryEstimator(), config=cfg) as il:
        il.train(_data())
    path, msg = lc.wait("train")
    _check(path, msg, "incrementallearningjob", "train-0", "il")
    assert msg["status"] == "completed"
    assert set(msg["results"][0]) == {"format", "url", "metrics"}


def test_lifelong_learning_reports_training(lc: _LC, tmp_path: Path) -> None:
    from sedna_core.jobs.lifelong import LifelongLearning
    from sedna_core.testing import InMemoryEstimator

    x, y = _data(60)
    x[:, 2] = np.repeat([0.0, 1.0], 30)  # the task attribute, by position
    cfg = LifelongConfig.from_env(
        {"LC_SERVER": lc.url, "WORKER_NAME": "train-0", "NAMESPACE": "ns", "JOB_NAME": "ll",
         "OUTPUT_URL": str(tmp_path)}
    )  # fmt: skip
    spec = {"method": "TaskDefinitionByDataAttr", "param": {"attribute": [2]}}
    with LifelongLearning(InMemoryEstimator(), task_definition=spec, config=cfg) as ll:
        ll.train((x, y))
    path, msg = lc.wait("train")
    _check(path, msg, "lifelonglearningjob", "train-0", "ll")
    assert msg["status"] == "completed"


def test_federated_client_reports_as_a_federated_job(lc: _LC) -> None:
    from sedna_core.jobs.federated import FederatedLearning
    from sedna_core.testing import InMemoryEstimator

    cfg = FederatedConfig.from_env(
        {"LC_SERVER": lc.url, "WORKER_NAME": "edge1", "NAMESPACE": "ns", "JOB_NAME": "fl"}
    )
    with FederatedLearning(InMemoryEstimator(), config=cfg) as fl:
        # a whole job against a server is in tests/compat; here: the message and its address
        fl.report("train", "running", owner_info={"currentRound": 1})
    path, msg = lc.wait("train")
    _check(path, msg, "federatedlearningjob", "edge1", "fl")
    assert msg["ownerInfo"] == {"currentRound": 1}
