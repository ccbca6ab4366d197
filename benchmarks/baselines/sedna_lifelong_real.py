"""Sedna's real ``LifelongLearning`` (``../shared/peers/sedna-lib``, unmodified), run in its own
venv by ``benchmarks/lifelong.py``; never imported by sedna-core.

Usage (the Sedna venv's python, ``PYTHONPATH`` = the Sedna SDK)::

    python benchmarks/baselines/sedna_lifelong_real.py WORKDIR [C] [REPEAT]

``WORKDIR/data.npz`` holds ``train_x``, ``train_y``, ``infer_x`` (float pixel features) and
``train_attr``/``infer_attr`` (string attribute columns ``season``, ``cooling``). What is
configured, stated exactly:

* ``seen_estimator``: an estimator class in the style of Sedna's ATCII example
  (``interface.Estimator``: ``train(train_data)``, ``predict``, ``save``/``load`` of a pickle)
  wrapping ``LogisticRegression(C=<argv C>, max_iter=2000)``; ``BACKEND_TYPE=SKLEARN``;
* ``task_definition``: ``TaskDefinitionByDataAttr`` with ``attribute: [season, cooling]``;
* ``task_allocation``: ``TaskAllocationByDataAttr`` with the same attributes;
* ``unseen_sample_recognition``: ``AllSeen``, registered here through Sedna's own
  ``ClassFactory`` (every sample seen): Sedna's default, ``SampleRegonitionDefault``, sends half
  of every batch to the unseen path (a coin for one sample), which would make the predictions
  incomparable; everything else is Sedna's default;
* Sedna's own knowledge-base server (``python -m sedna.service.run_kb`` on 127.0.0.1, SQLite in
  WORKDIR), started here
  as a process; training uploads the task models, samples and index to it, and the first
  inference deploys them to the edge (``edge_output_url``), as in a Sedna deployment.

Timed: ``LifelongLearning.inference`` on the whole inference table in one call (a
``BaseDataSource`` holding a DataFrame), after one warm-up call; best of ``REPEAT``. Prints one
JSON line and writes the predictions to ``WORKDIR/sedna_pred.npy``.
"""

import json
import os
import pickle
import socket
import subprocess
import sys
import time

import numpy as np


def start_kb_server(work: str) -> "subprocess.Popen[bytes]":
    """Sedna's KB server (``sedna.service.run_kb``: creates the SQLite tables, then ``KBServer``)
    in its own process on a free loopback port; sets ``KB_SERVER``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "KnowledgeBaseServer": f"http://127.0.0.1:{port}",
        "KnowledgeBasePath": os.path.join(work, "kb"),
    }
    log = open(os.path.join(work, "kb-server.log"), "wb")  # noqa: SIM115 - the server's lifetime
    proc = subprocess.Popen(
        [sys.executable, "-m", "sedna.service.run_kb"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)  # a process start-up, polled: not a test
    else:
        proc.kill()
        raise SystemExit("Sedna's KBServer did not start within 60 s")
    os.environ["KB_SERVER"] = f"http://127.0.0.1:{port}"
    return proc


def main() -> None:
    """Start the KB server, then Sedna's train worker and inference worker as two processes (as
    Sedna deploys them; in one process its inference reuses the training's in-memory models,
    whose files the KB upload has already moved)."""
    work = sys.argv[1]
    os.environ["KB_URL"] = f"sqlite:///{os.path.join(work, 'kb.sqlite3')}"
    os.environ["OUTPUT_URL"] = os.path.join(work, "sedna-out")
    # Sedna reads this one in lower case
    os.environ["edge_output_url"] = os.path.join(work, "sedna-edge")  # noqa: SIM112
    os.environ.setdefault("BACKEND_TYPE", "SKLEARN")
    os.makedirs(os.environ["OUTPUT_URL"], exist_ok=True)
    kb = start_kb_server(work)
    try:
        for role in ("train", "infer"):
            done = subprocess.run(
                [sys.executable, __file__, *sys.argv[1:], f"--role={role}"], cwd=work
            )
            if done.returncode != 0:
                raise SystemExit(f"Sedna's {role} worker failed ({done.returncode})")
    finally:
        kb.terminate()


def worker(role: str) -> None:
    work = sys.argv[1]
    c = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
    repeat = int(sys.argv[3]) if len(sys.argv) > 3 else 3

    import pandas as pd
    from sedna.common.class_factory import ClassFactory, ClassType
    from sedna.core.lifelong_learning import LifelongLearning
    from sedna.datasources import BaseDataSource
    from sklearn.linear_model import LogisticRegression

    class Estimator:
        def __init__(self) -> None:
            self.model = LogisticRegression(C=c, max_iter=2000)

        def train(self, train_data, valid_data=None, **kwargs):
            self.model.fit(np.asarray(train_data.x, dtype=float), np.asarray(train_data.y))
            return {}

        def predict(self, datas, **kwargs):
            return self.model.predict(np.asarray(datas, dtype=float))

        def save(self, model_path=None):
            with open(model_path, "wb") as fh:
                pickle.dump(self.model, fh)
            return model_path

        def load(self, model_url):
            with open(model_url, "rb") as fh:  # written by the train worker: Sedna's own format
                self.model = pickle.load(fh)
            return self

    @ClassFactory.register(ClassType.UTD, alias="AllSeen")
    class AllSeen:
        def __init__(self, task_index, **kwargs):
            pass

        def __call__(self, samples):
            unseen = BaseDataSource(data_type=samples.data_type)
            unseen.x = []
            return samples, unseen

    data = np.load(os.path.join(work, "data.npz"))
    attrs = ["season", "cooling"]

    def frame(x: np.ndarray, attr: np.ndarray) -> pd.DataFrame:
        df = pd.DataFrame(x, columns=[f"p{i}" for i in range(x.shape[1])])
        for j, name in enumerate(attrs):
            df[name] = attr[:, j]
        return df

    attribute = {"attribute": attrs}
    job = LifelongLearning(
        Estimator,
        task_definition={"method": "TaskDefinitionByDataAttr", "param": attribute},
        task_allocation={"method": "TaskAllocationByDataAttr", "param": attribute},
        unseen_sample_recognition={"method": "AllSeen"},
    )
    if role == "train":
        train = BaseDataSource(data_type="train")
        train.x = frame(data["train_x"], data["train_attr"])
        train.y = pd.Series(data["train_y"])
        job.train(train)
        os._exit(0)

    def sample():  # built outside the timed call: Sedna's inference changes it in place
        s = BaseDataSource(data_type="test")
        s.x = frame(data["infer_x"], data["infer_attr"])
        return s

    job.inference(sample())  # warm-up: deploys the index to the edge, starts its services
    best = float("inf")
    pred = None
    for _ in range(repeat):
        s = sample()
        t0 = time.perf_counter()
        pred, _, _ = job.inference(s)
        best = min(best, time.perf_counter() - t0)
    np.save(os.path.join(work, "sedna_pred.npy"), np.asarray(pred))
    rows = len(data["infer_x"])
    print(
        json.dumps(
            {
                "system": "sedna_lifelong_inference",
                "rows": rows,
                "seconds": best,
                "rows_per_s": rows / best,
            }
        ),
        flush=True,
    )
    # Sedna's inference starts non-daemon threads (model hot update, unseen-sample watcher)
    # that never end: leave without waiting for them.
    os._exit(0)


if __name__ == "__main__":
    roles = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--role=")]
    if roles:
        sys.argv = [a for a in sys.argv if not a.startswith("--role=")]
        worker(roles[0])
    else:
        main()
