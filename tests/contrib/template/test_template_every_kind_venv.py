"""The template rendered for every kind, installed together into one throwaway environment.

Each rendered plugin is listed ``ok``, its own generated tests pass there, and each is used by
the job of its kind, which is shown to have used the rendered algorithm's output: the scripts
wrap the rendered class's method (the registry hands jobs that same class) and compare what the
job produced with what the method returned. The environment sees this one's packages through a
``.pth`` file, so nothing is downloaded (``--no-deps --no-build-isolation``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TEMPLATE = ROOT / "plugins-contrib" / "template"
#: kind -> (plugin name, algorithm name)
PLUGINS = {
    "backend": ("v-backend", "VBackend"),
    "aggregation": ("v-agg", "VAgg"),
    "hard_example_mining": ("v-miner", "VMiner"),
    "task_definition": ("v-def", "VDef"),
    "task_allocation": ("v-alloc", "VAlloc"),
    "task_relation_discovery": ("v-rel", "VRel"),
    "task_remodeling": ("v-remodel", "VRemodel"),
    "inference_integrate": ("v-integrate", "VIntegrate"),
    "unseen_task_detection": ("v-detector", "VDetector"),
    "task_update_decision": ("v-decision", "VDecision"),
}

RECORD = """
import json, sys, tempfile, threading
import numpy as np
from sedna_core.log import configure_logging
from sedna_core.plugins import resolve_algorithm

configure_logging()

def record(kind, name, method):
    '''Wrap the rendered class's method (the registry gives jobs this class): outputs kept.'''
    cls = resolve_algorithm(kind, name)
    original, outputs = getattr(cls, method), []
    def wrapper(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        outputs.append(out)
        return out
    setattr(cls, method, wrapper)
    return cls, outputs
"""

INCREMENTAL = (
    RECORD
    + """
from sedna_core.jobs.incremental import IncrementalLearning
from sedna_plugin_v_backend.backend import CentroidModel

backend_cls, predictions = record("backend", "VBackend", "predict")
miner_cls, decisions = record("hard_example_mining", "VMiner", "mine")
rng = np.random.default_rng(0)
y = np.repeat([0, 1, 2], 20)
x = rng.normal(size=(60, 2)) + 1.5 * y[:, None]
with tempfile.TemporaryDirectory() as ws:
    il = IncrementalLearning(
        estimator=CentroidModel(n_classes=3), backend="VBackend",
        hard_example_mining={"method": "VMiner", "param": {"margin": "0.3"}},
        workspace=ws, mine_proba=True, hard_examples=False,
    )
    with il:
        il.train((x, y))
        out = il.inference_batch(x)
assert out.raw is predictions[-1], "the job's predictions are not the rendered backend's"
assert out.is_hard.tolist() == decisions[-1].tolist(), "the job's decisions are not the miner's"
json.dump({"hard": int(out.is_hard.sum()), "accuracy": float((out.raw == y).mean())}, sys.stdout)
"""
)

FEDERATED = (
    RECORD
    + """
from sedna_core.config.federated import FederatedConfig
from sedna_core.jobs.federated import AggregationServer, FederatedLearning

agg_cls, rounds = record("aggregation", "VAgg", "combine")

class Target:
    '''Local training moves the weights halfway to this client's target.'''
    def __init__(self, k):
        self.k, self.w = k, [np.zeros((3, 2), np.float32), np.zeros(4, np.float32)]
    def train(self, train_data, valid_data=None, **kwargs):
        self.w = [((w + self.k) / 2).astype(np.float32) for w in self.w]
        return {"loss": 0.0}
    def predict(self, x):
        return x
    def evaluate(self, data, **kwargs):
        return {}
    def get_weights(self):
        return [w.copy() for w in self.w]
    def set_weights(self, weights):
        self.w = [np.array(w, dtype=np.float32) for w in weights]

init = [np.zeros((3, 2), np.float32), np.zeros(4, np.float32)]
server = AggregationServer("VAgg", exit_round=1, participants_count=3, port=0,
                           initial_weights=init)
server.start_in_background()
targets = {"c0": 1.0, "c1": 1.2, "c2": 500.0}  # one outlier
asked = {"c0": "VAgg", "c1": "VAgg", "c2": "VAgh"}  # c2 misspells the aggregation
threads = []
try:
    for cid, k in targets.items():
        client = FederatedLearning(
            Target(k), aggregation=asked[cid], address=server.ws_url, client_id=cid,
            config=FederatedConfig.from_env({}, worker_name=cid), backend="custom",
        )
        t = threading.Thread(target=client.train, args=([0] * 10,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
    result = server.wait_background(120)
finally:
    server.stop_background()
assert result.status == "completed", result
assert len(rounds) == 1, rounds
for got, want in zip(result.weights, rounds[0], strict=True):
    np.testing.assert_allclose(got, np.asarray(want, dtype=np.float32), rtol=1e-6)
fresh = agg_cls().aggregate(init, [([np.full(s.shape, k / 2, np.float32) for s in init], 10)
                                   for k in targets.values()])
np.testing.assert_allclose(result.weights[0], fresh[0], rtol=1e-5)
json.dump({"global": float(result.weights[0].mean())}, sys.stdout)
"""
)

LIFELONG = (
    RECORD
    + """
from sedna_core.jobs.lifelong import LifelongLearning
from sedna_core.testing import InMemoryEstimator

_, definitions = record("task_definition", "VDef", "fit")
_, groupings = record("task_relation_discovery", "VRel", "discover")
_, allocations = record("task_allocation", "VAlloc", "allocate")
_, splits = record("task_remodeling", "VRemodel", "remodel")
_, merged = record("inference_integrate", "VIntegrate", "integrate")
_, flags = record("unseen_task_detection", "VDetector", "detect")
_, plans = record("task_update_decision", "VDecision", "decide")

def table(seasons, seed):
    rng = np.random.default_rng(seed)
    seasons = np.asarray(seasons)
    offset = {"summer": 0.0, "winter": 6.0, "spring": 12.0, "autumn": 60.0}
    shift = np.array([offset[s] for s in seasons])
    f = rng.normal(size=(len(seasons), 2)) + shift[:, None]
    y = (f[:, 0] - shift > 0).astype(int)
    return {"season": seasons, "f": f}, y

x, y = table(np.repeat(["summer", "winter", "spring"], 40), 0)
with tempfile.TemporaryDirectory() as ws:
    ll = LifelongLearning(
        InMemoryEstimator(n_classes=2),
        task_definition={"method": "VDef", "param": {"column": "season"}},
        task_relationship_discovery={"method": "VRel", "param": {"key": "season"}},
        task_allocation={"method": "VAlloc", "param": {"column": "season"}},
        task_remodeling="VRemodel",
        inference_integrate="VIntegrate",
        task_update_decision={"method": "VDecision", "param": {"strategy": "retrain"}},
        unseen_sample_recognition=[{"method": "VDetector", "param": {"target_fpr": "0.01"}}],
        output_url=ws,
    )
    feedback = ll.train((x, y))
    know = ll.knowledge
    assert [t.entry for t in definitions[-1].tasks] == sorted(t.entry for t in know.tasks)
    assert [g.entry for g in know.groups] == [g.entry for g in groupings[-1]]

    xt, yt = table(["summer", "winter", "autumn", "spring", "summer"], 1)
    result, is_unseen, tasks = ll.inference(xt)
    assert result is merged[-1], "the job's result is not the rendered integration's output"
    alloc = allocations[-1]
    assert alloc.tolist()[2] == -1  # autumn: no task
    assert is_unseen[2] and flags[-1][2]  # far away: the detector flags it too
    assert bool(is_unseen[0]) == bool(flags[-1][0])
    used = [(r.task_id, r.rows.tolist()) for r in tasks if r.task_id >= 0]
    assert used == [(t, rows.tolist()) for t, rows in splits[-1] if t >= 0]

    xn, yn = table(["summer", "summer", "autumn", "autumn"], 2)
    ll.update((xn, yn))
    plan = plans[-1]
    assert set(plan.updates) == {t.task_id for t in know.tasks if t.entry == "summer"}
    assert plan.strategies == {k: "retrain" for k in plan.updates}
    assert "autumn" in {t.entry for t in ll.knowledge.tasks}  # the new rows made a task
json.dump({"tasks": sorted(feedback), "unseen": np.asarray(is_unseen).tolist()}, sys.stdout)
"""
)


def _render_module():
    spec = importlib.util.spec_from_file_location(
        "sedna_template_every_kind", TEMPLATE / "render.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(cmd: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> str:
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{cmd[:4]}...\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + "\n" + proc.stderr


@pytest.fixture(scope="module")
def kinds_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path], dict]:
    render = _render_module()
    root = tmp_path_factory.mktemp("every-kind")
    projects = {
        kind: render.render(render.context(name, kind=kind, algorithm_name=algo), root / "src")
        for kind, (name, algo) in PLUGINS.items()
    }
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=False, symlinks=os.name != "nt").create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    shared = sysconfig.get_paths()["purelib"]
    (Path(purelib) / "shared-venv.pth").write_text(f"import site; site.addsitedir({shared!r})\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "PIP_", "VIRTUAL"))}
    env = {k: v for k, v in env.items() if not k.startswith("SEDNA_")}
    env.update(
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INDEX="1",
        PIP_NO_CACHE_DIR="1",
        SEDNA_LOG_FORMAT="json",
        LOG_LEVEL="INFO",
    )
    pip = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
    _run([*pip, *map(str, projects.values())], env, root)
    return python, projects, env


@pytest.mark.venv
def test_every_kind_is_listed_ok(kinds_venv) -> None:
    python, _, env = kinds_venv
    out = _run([str(python), "-m", "sedna_core.cli.main", "plugins", "list", "--json"], env, ROOT)
    listing = {p["name"]: p for p in json.loads(out[: out.rindex("]") + 1])}
    for kind, (name, algo) in PLUGINS.items():
        entry = listing[f"sedna-plugin-{name}"]
        assert entry["status"] == "ok" and not entry["problems"], entry
        assert algo in entry["algorithms"][kind], entry
    assert listing["sedna-plugin-v-def"]["algorithms"]["task_allocation"] == ["VDefAllocator"]
    shown = _run(
        [str(python), "-m", "sedna_core.cli.main", "plugins", "show", "VAgg", "--json"], env, ROOT
    )
    doc = json.loads(shown[: shown.rindex("}") + 1])
    (agg,) = doc["plugins"][0]["algorithms_detail"]
    assert [(p["name"], p["type"], p["default"]) for p in agg["parameters"]] == [
        ("iterations", "int", "16"),
        ("eps", "float", "1e-08"),
    ]


@pytest.mark.venv
def test_every_kind_passes_its_generated_tests(kinds_venv) -> None:
    python, projects, env = kinds_venv
    tests = [str(p / "tests") for p in projects.values()]
    cmd = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--import-mode=importlib"]
    out = _run([*cmd, *tests], env, next(iter(projects.values())).parent)
    summary = [line for line in out.splitlines() if " passed" in line][-1]
    assert "failed" not in summary and int(summary.split()[0]) >= 11 * len(PLUGINS), summary


@pytest.mark.venv
@pytest.mark.parametrize("script", ["incremental", "federated", "lifelong"])
def test_every_kind_serves_its_job(kinds_venv, script: str, tmp_path: Path) -> None:
    python, _, env = kinds_venv
    code = {"incremental": INCREMENTAL, "federated": FEDERATED, "lifelong": LIFELONG}[script]
    proc = subprocess.run(
        [str(python), "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-8000:]
    result = json.loads(proc.stdout)
    if script == "incremental":
        assert result["accuracy"] > 0.6 and 0 < result["hard"] < 60  # chance: 1/3
    elif script == "federated":
        assert abs(result["global"] - 0.55) < 0.2  # the median ignores the 500 outlier
        logged = [json.loads(line) for line in proc.stderr.splitlines() if "VAgh" in line]
        warned = [e for e in logged if e["level"] == "warning" and "VAgg" in e["event"]]
        assert [e["worker"] for e in warned] == ["c2"], logged  # names both aggregations
    else:
        assert result["tasks"] == ["spring", "summer", "winter"]
        assert result["unseen"][2] is True
