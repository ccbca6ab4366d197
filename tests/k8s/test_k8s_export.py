"""`sedna k8s export`: job file -> Sedna manifests, each validated against its CRD schema."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sedna_core.cli.main import main
from sedna_core.k8s import (
    EXAMPLES,
    JOB_FILE_SCHEMA,
    JobFileError,
    ManifestError,
    build_manifests,
    crd_for,
    dump_manifests,
    export_job_file,
    validate_manifest,
    write_manifests,
)

KINDS = sorted(EXAMPLES)


def _job(kind: str) -> dict[str, Any]:
    return yaml.safe_load(EXAMPLES[kind])


def _env(manifest: dict[str, Any], *path: Any) -> dict[str, Any]:
    node: Any = manifest["spec"]
    for part in path:
        node = node[part]
    container = node["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("kind", KINDS)
def test_every_example_exports_manifests_valid_under_their_crd(kind: str) -> None:
    export = build_manifests(_job(kind))
    assert export.warnings == []
    assert export.manifests[-1]["kind"] == kind
    for manifest in export.manifests:
        crd = crd_for(manifest["kind"])
        assert manifest["apiVersion"] == crd.api_version == "sedna.io/v1alpha1"
        validate_manifest(manifest)  # strict: no field Kubernetes would prune
        # and plain jsonschema on the unmodified CRD schema agrees
        jsonschema.Draft7Validator(crd.schema()).validate(manifest)


@pytest.mark.parametrize("kind", KINDS)
def test_examples_match_the_published_job_file_schema(kind: str) -> None:
    jsonschema.Draft7Validator.check_schema(JOB_FILE_SCHEMA)
    jsonschema.Draft7Validator(JOB_FILE_SCHEMA).validate(_job(kind))


def test_models_and_datasets_come_first_and_reference_by_name() -> None:
    manifests = build_manifests(_job("FederatedLearningJob")).manifests
    assert [m["kind"] for m in manifests] == ["Model", "Dataset", "Dataset", "FederatedLearningJob"]
    job = manifests[-1]
    datasets = {m["metadata"]["name"]: m["spec"] for m in manifests if m["kind"] == "Dataset"}
    for worker in job["spec"]["trainingWorkers"]:
        ref = worker["dataset"]["name"]
        assert datasets[ref]["nodeName"] == worker["template"]["spec"]["nodeName"]


def test_joint_inference_workers_get_the_variables_sedna_core_reads() -> None:
    job = build_manifests(_job("JointInferenceService")).manifests[-1]
    cloud = _env(job, "cloudWorker")
    edge = _env(job, "edgeWorker")
    # the server must listen on the pod's address, and only with a token
    assert cloud["BIG_MODEL_BIND_IP"] == "0.0.0.0"
    token = {"secretKeyRef": {"name": "sedna-token", "key": "token"}}
    assert cloud["SEDNA_TOKEN"] == token and edge["SEDNA_TOKEN"] == token
    assert "SEDNA_INSECURE" not in cloud
    assert edge["SEDNA_CLOUD_TIMEOUT"] == "1.0"
    assert edge["BACKEND_TYPE"] == cloud["BACKEND_TYPE"] == "keras"
    assert "BIG_MODEL_BIND_IP" not in edge
    hem = job["spec"]["edgeWorker"]["hardExampleMining"]
    assert hem == {
        "name": "IBT",
        "parameters": [
            {"key": "threshold_img", "value": "0.9"},
            {"key": "threshold_box", "value": "0.9"},
        ],
    }


def test_federated_server_waits_for_every_training_worker_by_default() -> None:
    job = build_manifests(_job("FederatedLearningJob")).manifests[-1]
    agg = _env(job, "aggregationWorker")
    assert agg["PARTICIPANTS_COUNT"] == "2"
    assert agg["EXIT_ROUND"] == "3"
    assert agg["AGGREGATION_ALGORITHM"] == "FedAvg"
    assert agg["AGG_BIND_IP"] == "0.0.0.0"


def test_aggregation_parameters_travel_as_json() -> None:
    doc = _job("FederatedLearningJob")
    doc["aggregationWorker"]["aggregation"] = {"name": "TrimmedMean", "parameters": {"beta": 0.1}}
    doc["aggregationWorker"]["participantsCount"] = 1
    agg = _env(build_manifests(doc).manifests[-1], "aggregationWorker")
    assert agg["AGGREGATION_ALGORITHM"] == "TrimmedMean"
    assert agg["AGG_PARAMETERS"] == '{"beta": 0.1}'
    assert agg["PARTICIPANTS_COUNT"] == "1"


def test_insecure_servers_are_an_explicit_choice() -> None:
    doc = _job("JointInferenceService")
    del doc["security"]
    with pytest.raises(JobFileError, match=r"security\.tokenSecret"):
        build_manifests(doc)
    doc["security"] = {"insecure": True}
    job = build_manifests(doc).manifests[-1]
    assert _env(job, "cloudWorker")["SEDNA_INSECURE"] == "true"
    assert "SEDNA_INSECURE" not in _env(job, "edgeWorker")
    assert "SEDNA_TOKEN" not in _env(job, "cloudWorker")


def test_incremental_defaults_and_hot_update() -> None:
    doc = _job("IncrementalLearningJob")
    del doc["trainSpec"]["trigger"], doc["deploySpec"]["trigger"], doc["dataset"]["trainProb"]
    spec = build_manifests(doc).manifests[-1]["spec"]
    assert spec["trainSpec"]["trigger"]["condition"] == {
        "metric": "num_of_samples",
        "operator": ">",
        "threshold": 500,
    }
    assert spec["deploySpec"]["trigger"]["condition"]["metric"] == "precision_delta"
    assert spec["deploySpec"]["model"] == {
        "name": "deploy-model",
        "hotUpdateEnabled": True,
        "pollPeriodSeconds": 60,
    }
    assert spec["dataset"] == {"name": "incremental-dataset", "trainProb": 0.8}


def test_lifelong_workers_know_the_knowledge_base() -> None:
    job = build_manifests(_job("LifelongLearningJob")).manifests[-1]
    for role in ("trainSpec", "evalSpec", "deploySpec"):
        assert _env(job, role)["KB_SERVER"] == "http://kb.sedna:9020"
    mounts = job["spec"]["deploySpec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert mounts == [{"name": "volume-0", "mountPath": "/data", "readOnly": True}]


def test_minimal_lifelong_job_fills_every_required_worker() -> None:
    doc = {
        "kind": "lifelonglearning",
        "name": "tiny",
        "image": "img:1",
        "datasets": {"d": {"url": "/d.csv", "format": "csv", "node": "n1"}},
        "dataset": {"name": "d"},
        "outputDir": "/out",
    }
    job = build_manifests(doc).manifests[-1]
    assert set(job["spec"]) >= {"trainSpec", "evalSpec", "deploySpec", "dataset", "outputDir"}


def test_existing_resources_are_referenced_not_written() -> None:
    doc = _job("JointInferenceService")
    doc["models"]["helmet-detection-inference-big-model"] = {"existing": True}
    kinds = [m["metadata"]["name"] for m in build_manifests(doc).manifests]
    assert "helmet-detection-inference-big-model" not in kinds


def test_warnings_for_unused_resources_and_controller_variables() -> None:
    doc = _job("JointInferenceService")
    doc["models"]["spare"] = {"url": "/m", "format": "keras"}
    doc["edgeWorker"]["env"]["BIG_MODEL_IP"] = "10.0.0.1"
    export = build_manifests(doc)
    assert any("models.spare" in w for w in export.warnings)
    assert any("edgeWorker.env.BIG_MODEL_IP" in w for w in export.warnings)
    assert "spare" not in [m["metadata"]["name"] for m in export.manifests]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["edgeWorker"].update(hardExampleMinning={"name": "IBT"}),
         "did you mean 'hardExampleMining'"),
        (lambda d: d["edgeWorker"].update(model="nope"), "model 'nope' is not declared"),
        (lambda d: d.update(name="Helmet_Detection"), "name: 'Helmet_Detection' is not a DNS"),
        (lambda d: d.pop("image"), "edgeWorker.image: no image"),
        (lambda d: d["edgeWorker"].update(miningMode="sometimes"), "edgeWorker.miningMode"),
        (lambda d: d["models"]["helmet-detection-inference-big-model"].pop("url"),
         "'url' is required"),
        (lambda d: d.update(kind="Quantum"), "not a job kind"),
        (lambda d: d["cloudWorker"].update(volumes=[{"hostPath": "rel", "mountPath": "/x"}]),
         "cloudWorker.volumes[0].hostPath"),
    ],
)  # fmt: skip
def test_job_file_errors_name_the_path_and_the_fix(mutate: Any, expected: str) -> None:
    doc = _job("JointInferenceService")
    mutate(doc)
    with pytest.raises(JobFileError) as info:
        build_manifests(doc)
    assert expected in str(info.value)


def test_job_file_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="cannot read"):
        export_job_file(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [unclosed\n")
    with pytest.raises(JobFileError, match="not valid YAML"):
        export_job_file(bad)
    two = tmp_path / "two.yaml"
    two.write_text("kind: ji\n---\nkind: fl\n")
    with pytest.raises(JobFileError, match="exactly one YAML document"):
        export_job_file(two)


# -- the validator's Kubernetes semantics --------------------------------------------------


def _valid_ji() -> dict[str, Any]:
    return copy.deepcopy(build_manifests(_job("JointInferenceService")).manifests[-1])


def test_undeclared_fields_are_errors_because_kubernetes_prunes_them() -> None:
    manifest = _valid_ji()
    manifest["spec"]["edgeWorker"]["hardExampleMinning"] = {"name": "IBT"}
    with pytest.raises(ManifestError) as info:
        validate_manifest(manifest)
    assert "would drop it silently" in str(info.value)
    from sedna_core.k8s import validation_errors

    lenient = validation_errors(manifest, strict=False)
    assert lenient == []


@pytest.mark.parametrize(
    ("value", "ok"), [("500m", True), (2, True), ("1Gi", True), ([1], False), (True, False)]
)
def test_int_or_string_quantities(value: Any, ok: bool) -> None:
    from sedna_core.k8s import validation_errors

    manifest = _valid_ji()
    container = manifest["spec"]["cloudWorker"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"cpu": value}}
    assert (validation_errors(manifest) == []) is ok


def test_int32_range_and_api_version_and_namespace() -> None:
    from sedna_core.k8s import validation_errors

    manifest = _valid_ji()
    container = manifest["spec"]["cloudWorker"]["template"]["spec"]["containers"][0]
    container["ports"] = [{"containerPort": 2**31}]
    manifest["apiVersion"] = "sedna.io/v2"
    manifest["metadata"]["namespace"] = "Not Valid"
    errors = "\n".join(validation_errors(manifest))
    assert "out of range for int32" in errors
    assert "apiVersion: 'sedna.io/v2' is not served" in errors
    assert "metadata.namespace" in errors


def test_unknown_kind_and_non_mapping() -> None:
    from sedna_core.k8s import validation_errors

    assert "not one of Sedna's resources" in validation_errors({"kind": "Pod"})[0]
    assert validation_errors([])[0].startswith("<root>")  # type: ignore[arg-type]


def test_shipped_crds_name_their_source() -> None:
    from sedna_core.k8s import crds

    table = crds()
    assert sorted(table) == [
        "Dataset",
        "FederatedLearningJob",
        "IncrementalLearningJob",
        "JointInferenceService",
        "LifelongLearningJob",
        "Model",
    ]
    for crd in table.values():
        assert crd.source.startswith("kubeedge/sedna@") and crd.license == "Apache-2.0"
        assert crd.schema()["properties"]["spec"]["type"] == "object"


SHARED_CRDS = Path("/work/shared/data/sedna-crds")


@pytest.mark.skipif(not SHARED_CRDS.is_dir(), reason="Sedna's original CRD files are not here")
def test_shipped_schemas_equal_the_originals_without_descriptions() -> None:
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if k != "description"}
        return [strip(v) for v in node] if isinstance(node, list) else node

    for path in SHARED_CRDS.glob("sedna.io_*.yaml"):
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # 6 MB of YAML
        original = yaml.load(path.read_text(), Loader=loader)
        crd = crd_for(original["spec"]["names"]["kind"])
        version = original["spec"]["versions"][0]
        assert crd.schema(version["name"]) == strip(version["schema"]["openAPIV3Schema"])


# -- command line --------------------------------------------------------------------------


def test_cli_example_export_validate_roundtrip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    job = tmp_path / "job.yaml"
    assert main(["k8s", "example", "federatedlearning"]) == 0
    job.write_text(capsys.readouterr().out)
    out = tmp_path / "manifests"
    assert main(["k8s", "export", str(job), "-o", str(out)]) == 0
    files = sorted(out.iterdir())
    assert files[0].name == "01-model-surface-defect-detection-model.yaml"
    assert main(["k8s", "validate", *map(str, files)]) == 0
    assert capsys.readouterr().out.count(": ok") == len(files)

    assert main(["k8s", "export", str(job)]) == 0
    stream = list(yaml.safe_load_all(capsys.readouterr().out))
    assert [d["kind"] for d in stream][-1] == "FederatedLearningJob"


def test_cli_reports_problems_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    job = tmp_path / "job.yaml"
    job.write_text("kind: ji\nname: x\n")
    assert main(["k8s", "export", str(job)]) == 1
    err = capsys.readouterr().err
    assert "'edgeWorker' is a required property" in err
    manifest = _valid_ji()
    del manifest["spec"]["cloudWorker"]["model"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(dump_manifests([manifest]))
    assert main(["k8s", "validate", str(bad)]) == 1
    assert "spec.cloudWorker: 'model' is a required property" in capsys.readouterr().err


def test_cli_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["k8s", "schema"]) == 0
    assert json.loads(capsys.readouterr().out)["title"].startswith("sedna-core job file")


def test_write_manifests_one_file_each(tmp_path: Path) -> None:
    manifests = build_manifests(_job("IncrementalLearningJob")).manifests
    paths = write_manifests(manifests, tmp_path / "m")
    assert [yaml.safe_load(p.read_text()) for p in paths] == manifests


def test_every_variable_the_exporter_writes_is_read_by_sedna_core() -> None:
    from sedna_core.config import JobConfig
    from sedna_core.config.federated import AggregationServerConfig, FederatedConfig
    from sedna_core.config.joint_inference import BigModelServiceConfig, JointInferenceConfig
    from sedna_core.config.lifelong import LifelongConfig
    from sedna_core.k8s import ENV_FIELDS

    read = {"LOG_LEVEL"}  # read by sedna_core.log (tests/contract checks it)
    for cls in (
        JobConfig,
        JointInferenceConfig,
        BigModelServiceConfig,
        FederatedConfig,
        AggregationServerConfig,
        LifelongConfig,
    ):
        for names in cls.env_names().values():
            read.update(n.upper() for n in names)
    written = {v for table in ENV_FIELDS.values() for v in table.values()}
    written |= {"SEDNA_TOKEN", "SEDNA_INSECURE", "KB_SERVER", "AGGREGATION_ALGORITHM"}
    written |= {"AGG_PARAMETERS", "BIG_MODEL_BIND_IP", "AGG_BIND_IP"}
    assert sorted(written - read) == []
    for kind in KINDS:  # and nothing else appears in the examples' manifests
        job = build_manifests(_job(kind)).manifests[-1]
        for container in _containers(job):
            names = {e["name"] for e in container["env"]}
            user = set(_job(kind).get("env") or {})
            for worker in _workers_of(_job(kind)):
                user |= set(worker.get("env") or {})
            assert names - user <= written, names - user - written


def _containers(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if "containers" in node:
            return list(node["containers"])
        return [c for v in node.values() for c in _containers(v)]
    if isinstance(node, list):
        return [c for v in node for c in _containers(v)]
    return []


def _workers_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    keys = ("edgeWorker", "cloudWorker", "aggregationWorker", "trainSpec", "evalSpec", "deploySpec")
    return [doc[k] for k in keys if k in doc] + list(doc.get("trainingWorkers") or [])
