"""A corrupt or unloadable candidate is rejected; the serving model stays."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np

from sedna_core.config.incremental import IncrementalConfig
from sedna_core.jobs.incremental import IncrementalLearning


def _tag_job(tmp_path: Path, tag_backend: type, reporter: Any, **kw: Any) -> IncrementalLearning:
    job = IncrementalLearning(
        tag_backend(),
        config=IncrementalConfig.from_env({}),
        workspace=tmp_path / "ws",
        deploy_rule=lambda cand, serv: True,  # anything loadable passes: loading is under test
        **kw,
    )
    job.reporter = reporter
    return job


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 2)), np.zeros(n, dtype=np.int64)


def test_il_tampered_candidate_is_rejected(tmp_path, tag_backend, fake_reporter) -> None:
    job = _tag_job(tmp_path, tag_backend, fake_reporter)
    job.train(_data(5))
    job.train(_data(7), deploy=False)
    path = job.versions.store.get(job.versions.name, "2", verify=False).path
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    path.write_text('{"tag": "tampered"}')
    d = job.propose("2", _data(10))
    assert not d.deployed and "IntegrityError" in d.reason
    assert job.serving.version == "1"
    assert set(job.inference_batch(np.zeros((3, 2))).final) == {"trained-5"}
    assert ("deploy", "failed") in fake_reporter.kinds()
    assert job.versions.rejected == ["2"]


def test_il_unloadable_candidate_is_rejected(tmp_path, tag_backend, fake_reporter) -> None:
    job = _tag_job(tmp_path, tag_backend, fake_reporter)
    job.train(_data(5))
    broken = tmp_path / "broken.json"
    broken.write_text("this is not a model")
    info = job.versions.add(broken, format="json")  # a valid digest, but no model inside
    d = job.propose(info.version, _data(10))
    assert not d.deployed and "cannot load" in d.reason and "BackendError" in d.reason
    assert job.serving.version == "1"
    # train() reports only its own phase; the rejected proposal reports its deploy failure
    assert [m["status"] for m in fake_reporter.messages if m["kind"] == "deploy"] == ["failed"]
    d2 = job.deploy(info.version)  # not even an operator can deploy it
    assert not d2.deployed and job.serving.version == "1"


def test_il_probe_rejects_a_model_that_cannot_predict(tmp_path, tag_backend, fake_reporter):
    class Picky(tag_backend):  # type: ignore[misc, valid-type]
        def predict(self, data: Any, **kwargs: Any) -> np.ndarray:
            if self.model.tag == "trained-7":
                raise ValueError("wrong input shape")
            return super().predict(data)

    job = _tag_job(tmp_path, lambda: Picky(), fake_reporter, probe=np.zeros((1, 2)))
    job.train(_data(5))
    job.train(_data(7), eval_data=_data(10))
    assert not job.last_decision.deployed and "wrong input shape" in job.last_decision.reason
    assert job.serving.version == "1"
