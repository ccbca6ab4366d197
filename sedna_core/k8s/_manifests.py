"""Job file -> the manifests of Sedna's custom resources (the job, its Models and Datasets).

Sedna's controllers turn each worker's pod template into pods and inject the variables they own
(``WORKER_NAME``, ``MODEL_URL``, ``BIG_MODEL_IP``, ``AGG_PORT``, ``HEM_NAME``...). The exporter
adds to each container the variables sedna-core reads that the controllers do not set: where a
server listens inside its pod, the shared token (from a Secret), and the job's settings written
in the job file (:data:`ENV_FIELDS`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sedna_core.k8s._crds import crd_for, validate_manifest
from sedna_core.k8s._jobfile import load_job_file, validate_job

__all__ = [
    "CONTROLLER_VARIABLES",
    "ENV_FIELDS",
    "Export",
    "build_manifests",
    "dump_manifests",
    "export_job_file",
    "write_manifests",
]

#: worker role -> job-file field -> the environment variable it becomes
ENV_FIELDS: dict[str, dict[str, str]] = {
    "*": {"backend": "BACKEND_TYPE", "logLevel": "LOG_LEVEL"},
    "cloudWorker": {"bindAddress": "BIG_MODEL_BIND_IP", "workers": "SEDNA_WORKERS"},
    "edgeWorker": {
        "miningMode": "MINING_MODE",
        "cloudTimeout": "SEDNA_CLOUD_TIMEOUT",
        "wire": "SEDNA_JI_WIRE",
        "lcPeriod": "LC_PERIOD",
    },
    "aggregationWorker": {
        "bindAddress": "AGG_BIND_IP",
        "exitRound": "EXIT_ROUND",
        "participantsCount": "PARTICIPANTS_COUNT",
        "roundDeadline": "AGG_ROUND_DEADLINE",
    },
    "trainingWorkers": {"connectTimeout": "CONNECT_TIMEOUT"},
}
#: servers listen on the pod's address (sedna-core's default is loopback)
_SERVER_ROLES = {"cloudWorker": "BIG_MODEL_BIND_IP", "aggregationWorker": "AGG_BIND_IP"}
TOKEN_VARIABLE = "SEDNA_TOKEN"
INSECURE_VARIABLE = "SEDNA_INSECURE"
#: variables Sedna's controllers inject themselves: a value in the job file may be overridden
CONTROLLER_VARIABLES = frozenset(
    {
        "JOB_NAME", "SERVICE_NAME", "WORKER_NAME", "NAMESPACE", "LC_SERVER", "MODEL_URL",
        "MODEL_URLS", "TRAIN_DATASET_URL", "TEST_DATASET_URL", "ORIGINAL_DATASET_URL",
        "BIG_MODEL_IP", "BIG_MODEL_PORT", "BIG_MODEL_BIND_PORT", "HEM_NAME", "HEM_PARAMETERS",
        "AGG_IP", "AGG_PORT", "AGG_BIND_PORT", "MODEL_HOT_UPDATE", "MODEL_HOT_UPDATE_CONFIG",
        "HAS_COMPLETED_INITIAL_TRAINING", "CLOUD_KB_INDEX",
    }
)  # fmt: skip
_CONTAINER = {
    "edgeWorker": "edge-worker",
    "cloudWorker": "cloud-worker",
    "aggregationWorker": "aggregation-worker",
    "trainingWorkers": "training-worker",
    "trainSpec": "train-worker",
    "evalSpec": "eval-worker",
    "deploySpec": "deploy-worker",
}
#: Sedna's example values, used when the job file names no trigger
DEFAULT_TRAIN_TRIGGER = {
    "checkPeriodSeconds": 60,
    "condition": {"metric": "num_of_samples", "operator": ">", "threshold": 500},
}
DEFAULT_DEPLOY_TRIGGER = {
    "condition": {"metric": "precision_delta", "operator": ">", "threshold": 0.1},
}
DEFAULT_TRAIN_PROB = 0.8
MANAGED_BY = {"app.kubernetes.io/managed-by": "sedna-core"}


@dataclass
class Export:
    """What :func:`build_manifests` made: the manifests in apply order, and warnings."""

    manifests: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def export_job_file(path: str | Path) -> Export:
    """Read a job file and build (and validate) its manifests."""
    return build_manifests(load_job_file(path))


def build_manifests(job: Mapping[str, Any]) -> Export:
    """The manifests for a job file's content, each validated against its CRD schema.

    Order: Models, Datasets, then the job (the order to apply them in).

    Raises
    ------
    JobFileError
        The job description is invalid.
    ManifestError
        A generated manifest breaks its CRD schema (a bug here, or a value Kubernetes rejects).
    """
    doc = validate_job(job)
    builder = _Builder(doc)
    out = builder.build()
    for manifest in out.manifests:
        validate_manifest(manifest)
    return out


def dump_manifests(manifests: Sequence[Mapping[str, Any]]) -> str:
    """The manifests as one multi-document YAML text (for ``kubectl apply -f -``)."""
    return yaml.safe_dump_all([dict(m) for m in manifests], sort_keys=False, explicit_start=True)


def write_manifests(manifests: Sequence[Mapping[str, Any]], directory: str | Path) -> list[Path]:
    """One YAML file per manifest in ``directory``, numbered in apply order; returns the paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, manifest in enumerate(manifests, start=1):
        name = f"{i:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
        path = folder / name
        path.write_text(yaml.safe_dump(dict(manifest), sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


# -- internals -------------------------------------------------------------------------------


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _hem(spec: Any) -> dict[str, Any]:
    """Job-file algorithm -> the CRD's ``{name, parameters: [{key, value}]}``."""
    if isinstance(spec, str):
        return {"name": spec}
    out: dict[str, Any] = {"name": spec["name"]}
    params = spec.get("parameters") or {}
    if params:
        out["parameters"] = [{"key": k, "value": _env_value(v)} for k, v in params.items()]
    return out


class _Builder:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.kind: str = doc["kind"]
        self.warnings: list[str] = []
        self.used_models: set[str] = set()
        self.used_datasets: set[str] = set()

    def build(self) -> Export:
        job = self._job()
        manifests = [*self._models(), *self._datasets(), job]
        for section, used in (("models", self.used_models), ("datasets", self.used_datasets)):
            for name in sorted(set(self.doc.get(section) or {}) - used):
                self.warnings.append(f"{section}.{name} is declared but no worker uses it")
        return Export(manifests, self.warnings)

    # -- resources ----------------------------------------------------------------------

    def _metadata(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if self.doc.get("namespace"):
            meta["namespace"] = self.doc["namespace"]
        meta["labels"] = {**MANAGED_BY, **(self.doc.get("labels") or {})}
        return meta

    def _resource(self, kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return {
            "apiVersion": crd_for(kind).api_version,
            "kind": kind,
            "metadata": self._metadata(name),
            "spec": spec,
        }

    def _models(self) -> list[dict[str, Any]]:
        out = []
        for name, spec in (self.doc.get("models") or {}).items():
            if spec.get("existing") or name not in self.used_models:
                continue
            body = {"url": spec["url"], "format": spec["format"]}
            if spec.get("credentialName"):
                body["credentialName"] = spec["credentialName"]
            out.append(self._resource("Model", name, body))
        return out

    def _datasets(self) -> list[dict[str, Any]]:
        out = []
        for name, spec in (self.doc.get("datasets") or {}).items():
            if spec.get("existing") or name not in self.used_datasets:
                continue
            body = {"url": spec["url"], "format": spec["format"], "nodeName": spec["node"]}
            if spec.get("credentialName"):
                body["credentialName"] = spec["credentialName"]
            out.append(self._resource("Dataset", name, body))
        return out

    def _model(self, name: str) -> dict[str, Any]:
        self.used_models.add(name)
        return {"name": name}

    def _dataset(self, name: str) -> dict[str, Any]:
        self.used_datasets.add(name)
        return {"name": name}

    def _job(self) -> dict[str, Any]:
        build = {
            "JointInferenceService": self._joint_inference,
            "FederatedLearningJob": self._federated,
            "IncrementalLearningJob": self._incremental,
            "LifelongLearningJob": self._lifelong,
        }[self.kind]
        return self._resource(self.kind, self.doc["name"], build())

    def _joint_inference(self) -> dict[str, Any]:
        edge, cloud = self.doc["edgeWorker"], self.doc["cloudWorker"]
        return {
            "edgeWorker": {
                "model": self._model(edge["model"]),
                "hardExampleMining": _hem(edge["hardExampleMining"]),
                "template": self._template("edgeWorker", edge),
            },
            "cloudWorker": {
                "model": self._model(cloud["model"]),
                "template": self._template("cloudWorker", cloud),
            },
        }

    def _federated(self) -> dict[str, Any]:
        agg = dict(self.doc["aggregationWorker"])
        trainers = self.doc["trainingWorkers"]
        # Sedna's server waits for participants_count clients; default to every trainer
        agg.setdefault("participantsCount", len(trainers))
        spec: dict[str, Any] = {
            "aggregationWorker": {
                "model": self._model(agg["model"]),
                "template": self._template("aggregationWorker", agg),
            },
            "trainingWorkers": [
                {
                    "dataset": self._dataset(w["dataset"]),
                    "template": self._template("trainingWorkers", w, f"trainingWorkers[{i}]"),
                }
                for i, w in enumerate(trainers)
            ],
        }
        if self.doc.get("pretrainedModel"):
            spec["pretrainedModel"] = self._model(self.doc["pretrainedModel"])
        return spec

    def _dataset_ref(self) -> dict[str, Any]:
        ref = self.doc["dataset"]
        out = self._dataset(ref["name"])
        out["trainProb"] = ref.get("trainProb", DEFAULT_TRAIN_PROB)
        return out

    def _incremental(self) -> dict[str, Any]:
        train, evaluate, deploy = (self.doc[k] for k in ("trainSpec", "evalSpec", "deploySpec"))
        model = self._model(deploy["model"])
        if "hotUpdate" in deploy:
            model["hotUpdateEnabled"] = deploy["hotUpdate"]
        if "pollPeriodSeconds" in deploy:
            model["pollPeriodSeconds"] = deploy["pollPeriodSeconds"]
        eval_spec: dict[str, Any] = {"template": self._template("evalSpec", evaluate)}
        if evaluate.get("initialEvalModel"):
            eval_spec["initialEvalModel"] = self._model(evaluate["initialEvalModel"])
        spec: dict[str, Any] = {
            "dataset": self._dataset_ref(),
            "initialModel": self._model(self.doc["initialModel"]),
            "outputDir": self.doc["outputDir"],
            "trainSpec": {
                "template": self._template("trainSpec", train),
                "trigger": train.get("trigger", DEFAULT_TRAIN_TRIGGER),
            },
            "evalSpec": eval_spec,
            "deploySpec": {
                "model": model,
                "hardExampleMining": _hem(deploy["hardExampleMining"]),
                "trigger": deploy.get("trigger", DEFAULT_DEPLOY_TRIGGER),
                "template": self._template("deploySpec", deploy),
            },
        }
        if self.doc.get("credentialName"):
            spec["credentialName"] = self.doc["credentialName"]
        return spec

    def _lifelong(self) -> dict[str, Any]:
        train = self.doc["trainSpec"]
        spec: dict[str, Any] = {
            "dataset": self._dataset_ref(),
            "outputDir": self.doc["outputDir"],
            "trainSpec": {
                "template": self._template("trainSpec", train),
                "trigger": train.get("trigger", DEFAULT_TRAIN_TRIGGER),
            },
            "evalSpec": {"template": self._template("evalSpec", self.doc["evalSpec"])},
            "deploySpec": {"template": self._template("deploySpec", self.doc["deploySpec"])},
        }
        if self.doc.get("credentialName"):
            spec["credentialName"] = self.doc["credentialName"]
        return spec

    # -- pods ---------------------------------------------------------------------------

    def _env(self, role: str, worker: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
        values: dict[str, Any] = {}
        if role in _SERVER_ROLES:
            values[_SERVER_ROLES[role]] = "0.0.0.0"
        for key, var in ENV_FIELDS["*"].items():  # the worker's value, else the job's
            value = worker.get(key, self.doc.get(key))
            if value is not None:
                values[var] = value
        for key, var in ENV_FIELDS.get(role, {}).items():
            if worker.get(key) is not None:
                values[var] = worker[key]
        if role == "aggregationWorker" and "aggregation" in worker:
            algo = worker["aggregation"]
            values["AGGREGATION_ALGORITHM"] = algo if isinstance(algo, str) else algo["name"]
            if not isinstance(algo, str) and algo.get("parameters"):
                values["AGG_PARAMETERS"] = json.dumps(algo["parameters"], sort_keys=True)
        kb = self.doc.get("knowledgeBase")
        if kb:
            values["KB_SERVER"] = kb["url"]
        security = self.doc.get("security") or {}
        if role in _SERVER_ROLES and security.get("insecure") and not security.get("tokenSecret"):
            values[INSECURE_VARIABLE] = True
        for source in (self.doc.get("env") or {}, worker.get("env") or {}):
            for var, value in source.items():
                if var in CONTROLLER_VARIABLES:
                    self.warnings.append(
                        f"{path}.env.{var}: Sedna's controller sets {var} itself and may "
                        "override this value"
                    )
                values[var] = value
        env = [{"name": k, "value": _env_value(v)} for k, v in values.items()]
        secret = security.get("tokenSecret")
        if secret:
            env = [e for e in env if e["name"] != TOKEN_VARIABLE]
            env.append(
                {
                    "name": TOKEN_VARIABLE,
                    "valueFrom": {"secretKeyRef": {"name": secret["name"], "key": secret["key"]}},
                }
            )
        return env

    def _template(
        self, role: str, worker: Mapping[str, Any], path: str | None = None
    ) -> dict[str, Any]:
        path = path or role
        container: dict[str, Any] = {
            "name": _CONTAINER[role],
            "image": worker.get("image") or self.doc["image"],
        }
        policy = worker.get("imagePullPolicy") or self.doc.get("imagePullPolicy")
        if policy:
            container["imagePullPolicy"] = policy
        for key in ("command", "args", "workingDir"):
            if key in worker:
                container[key] = list(worker[key]) if key != "workingDir" else worker[key]
        container["env"] = self._env(role, worker, path)
        if worker.get("resources"):
            container["resources"] = {
                part: {k: v if isinstance(v, int) else str(v) for k, v in values.items()}
                for part, values in worker["resources"].items()
            }
        pod: dict[str, Any] = {"containers": [container]}
        if worker.get("node"):
            pod["nodeName"] = worker["node"]
        volumes = worker.get("volumes") or []
        if volumes:
            container["volumeMounts"] = [
                {"name": f"volume-{i}", "mountPath": v["mountPath"], "readOnly": v["readOnly"]}
                if "readOnly" in v
                else {"name": f"volume-{i}", "mountPath": v["mountPath"]}
                for i, v in enumerate(volumes)
            ]
            pod["volumes"] = [
                {"name": f"volume-{i}", "hostPath": {"path": v["hostPath"]}}
                for i, v in enumerate(volumes)
            ]
        return {"spec": pod}
