"""JobBase: estimator wrapping, lifecycle announcements, controller reports, closing."""

from __future__ import annotations

import attrs

from sedna_core.algorithms import BaseBackend
from sedna_core.config import JobConfig
from sedna_core.jobs._base import JobBase
from sedna_core.testing import InMemoryEstimator, RecordingPlugin


class _Job(JobBase):
    job_kind = "default"


def test_job_wraps_estimator_and_binds_identity(sedna_pm) -> None:
    config = JobConfig.from_env({"JOB_NAME": "demo", "WORKER_NAME": "edge-1"})
    with _Job(InMemoryEstimator(), config=config, plugin_manager=sedna_pm) as job:
        assert isinstance(job.estimator, BaseBackend)
        assert job.config.worker == "edge-1"
        assert job.reporter is not None


def test_job_without_estimator_keeps_none(sedna_pm) -> None:
    job = _Job(config=JobConfig.from_env({}), plugin_manager=sedna_pm)
    assert job.estimator is None
    job.close()
    job.close()  # idempotent


def test_announce_reaches_plugins_and_report_is_noop_without_lc(sedna_pm) -> None:
    recorder = RecordingPlugin()
    sedna_pm.register(recorder, name="recorder")
    config = JobConfig.from_env({"JOB_NAME": "demo"})
    assert config.lc_server is None
    job = _Job(config=config, plugin_manager=sedna_pm)
    job.announce("sedna_job_started", job_kind="default", job_name="demo", info={"a": 1})
    job.report("train", "completed", results=[])  # no LC_SERVER: nothing sent, nothing raised
    job.close()
    assert recorder.calls("sedna_job_started") == [
        {"job_kind": "default", "job_name": "demo", "info": {"a": 1}}
    ]


def test_config_is_frozen_and_explicit_wins() -> None:
    config = JobConfig.from_env({"JOB_NAME": "from-env"}, job_name="explicit")
    assert config.job_name == "explicit"
    assert attrs.has(type(config))
