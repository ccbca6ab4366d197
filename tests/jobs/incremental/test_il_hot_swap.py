"""Hot swap: concurrent inference never fails or mixes versions; watchers on a manual clock."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sedna_core.clock import ManualClock
from sedna_core.config.incremental import IncrementalConfig
from sedna_core.jobs.incremental import IncrementalLearning, ModelSlot, ServingModel


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((n, 2)), np.zeros(n, dtype=np.int64)


def _job(tmp_path: Path, tag_backend: type, env: dict[str, str] | None = None, **kw: Any):
    return IncrementalLearning(
        tag_backend(),
        config=IncrementalConfig.from_env(env or {}),
        workspace=tmp_path / "ws",
        deploy_rule=lambda cand, serv: True,
        **kw,
    )


def _wait_asleep(clock: ManualClock, n: int = 1, timeout: float = 10.0) -> None:
    """Until ``n`` threads sleep on the clock (their wake-up time is then fixed)."""
    deadline = time.monotonic() + timeout
    while clock.sleepers < n:
        if time.monotonic() > deadline:
            raise AssertionError("the watcher never went to sleep on the clock")
        os.sched_yield()


def test_il_swap_during_a_call_does_not_change_its_model(tmp_path, tag_backend) -> None:
    job = _job(tmp_path, tag_backend)
    job.train(_data(5))  # v1 serves "trained-5"
    job.train(_data(7), deploy=False)  # v2 would serve "trained-7"
    entered, release = threading.Event(), threading.Event()

    def hook(row: int) -> None:
        if row == 0:
            entered.set()
            assert release.wait(10)

    job.serving.model.row_hook = hook
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(job.inference_batch(np.zeros((4, 2)))))
    t.start()
    assert entered.wait(10)
    d = job.deploy("2")  # swaps while the call is in flight, without waiting for it
    assert d.deployed and job.serving.version == "2"
    release.set()
    t.join(10)
    assert list(result[0].final) == ["trained-5"] * 4 and result[0].version == "1"
    after = job.inference_batch(np.zeros((4, 2)))
    assert list(after.final) == ["trained-7"] * 4 and after.version == "2"


def test_il_concurrent_inference_during_swaps(tmp_path, tag_backend) -> None:
    job = _job(tmp_path, tag_backend)
    job.train(_data(5))
    job.train(_data(7), deploy=False)
    tags = {"1": "trained-5", "2": "trained-7"}
    done = threading.Event()
    errors: list[BaseException] = []
    calls = [0] * 4
    batch = np.zeros((25, 2))

    def worker(i: int) -> None:
        try:
            while not done.is_set() or calls[i] < 20:
                out = job.inference_batch(batch)
                values = set(out.final.tolist())
                assert values == {tags[out.version]}, (values, out.version)
                raw, _final, _hard = job.inference(np.zeros((1, 2)))
                assert len(set(raw.tolist())) == 1
                calls[i] += 1
        except BaseException as exc:
            errors.append(exc)

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, to interleave calls and swaps
    try:
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for k in range(40):
            assert job.deploy("2" if k % 2 == 0 else "1").deployed
        done.set()
        for t in threads:
            t.join(30)
    finally:
        sys.setswitchinterval(old)
    assert not errors, errors[0]
    assert all(c >= 20 for c in calls)
    assert job._slot.swaps >= 41


def test_il_model_slot_is_empty_until_set() -> None:
    slot = ModelSlot()
    assert slot.get() is None
    first = ServingModel("1", object())
    assert slot.swap(first) is None
    assert slot.swap(ServingModel("2", object())) is first and slot.swaps == 2


def _write_model(path: Path, tag: str) -> None:
    tmp = path.with_suffix(".partial")
    tmp.write_text(json.dumps({"tag": tag}))
    tmp.replace(path)


def _write_config(path: Path, model: Path, version: str) -> None:
    doc = {"model_config": {"model_path": str(model), "model_update_time": version}}
    path.write_text(json.dumps(doc))


def test_il_hot_update_config_watcher(tmp_path, tag_backend, fake_reporter) -> None:
    clock = ManualClock()
    cfg_file = tmp_path / "hot_update.json"
    model = tmp_path / "models" / "model.json"
    model.parent.mkdir()
    _write_model(model, "pushed-1")
    _write_config(cfg_file, model, "2024-01-01")
    env = {
        "MODEL_HOT_UPDATE": "true",
        "MODEL_HOT_UPDATE_CONFIG": str(cfg_file),
        "MODEL_POLL_PERIOD_SECONDS": "30",
    }
    job = _job(tmp_path, tag_backend, env, clock=clock)
    job.reporter = fake_reporter
    (watcher,) = job.watchers
    assert watcher._thread is not None and watcher._thread.daemon
    try:
        assert watcher.polls == 0
        _wait_asleep(clock)
        clock.advance(30)
        assert watcher.wait_for_polls(1)
        assert job.serving is not None and job.serving.version == "1"
        assert set(job.inference_batch(np.zeros((2, 2))).final) == {"pushed-1"}
        d = job.decisions()[-1]
        assert d.kind == "hot_update" and d.deployed and "2024-01-01" in d.reason
        assert job.versions.get("1").metadata["model_update_time"] == "2024-01-01"

        _wait_asleep(clock)
        clock.advance(30)  # same version: nothing happens
        assert watcher.wait_for_polls(2)
        assert job._slot.swaps == 1

        model.write_text("garbage, half written")  # a new version that cannot load
        _write_config(cfg_file, model, "2024-01-02")
        _wait_asleep(clock)
        clock.advance(30)
        assert watcher.wait_for_polls(3)
        assert job.serving.version == "1" and job.decisions()[-1].deployed is False
        assert fake_reporter.kinds()[-1] == ("deploy", "failed")

        _write_model(model, "pushed-3")
        _write_config(cfg_file, model, "2024-01-03")
        _wait_asleep(clock)
        clock.advance(95)  # three periods late: one poll, the missed ones are skipped
        assert watcher.wait_for_polls(4)
        assert set(job.inference_batch(np.zeros((2, 2))).final) == {"pushed-3"}
        assert job.versions.history == ["1", "3"]
        assert job.rollback().candidate == "1"
    finally:
        job.close()
        clock.advance(1000)  # wake the thread so it sees the stop
    watcher._thread.join(10)
    assert not watcher._thread.is_alive()


def test_il_hot_update_missing_config_keeps_polling(tmp_path, tag_backend) -> None:
    clock = ManualClock()
    env = {
        "MODEL_HOT_UPDATE": "1",
        "MODEL_HOT_UPDATE_CONFIG": str(tmp_path / "absent.json"),
        "MODEL_POLL_PERIOD_SECONDS": "5",
    }
    job = _job(tmp_path, tag_backend, env, clock=clock)
    (watcher,) = job.watchers
    for n in (1, 2):
        _wait_asleep(clock)
        clock.advance(5)
        assert watcher.wait_for_polls(n)
    assert job.serving is not None and job.serving.version == "initial" and watcher.running
    job.close()
    clock.advance(5)


def test_il_model_directory_watcher(tmp_path, tag_backend) -> None:
    clock = ManualClock()
    watch = tmp_path / "incoming"
    watch.mkdir()
    env = {"SEDNA_IL_MODEL_WATCH_DIR": str(watch), "MODEL_POLL_PERIOD_SECONDS": "10"}
    job = _job(tmp_path, tag_backend, env, clock=clock)
    (watcher,) = job.watchers

    def tick(n: int) -> None:
        _wait_asleep(clock)
        clock.advance(10)
        assert watcher.wait_for_polls(n)

    _write_model(watch / "m1.json", "dir-1")
    tick(1)
    assert set(job.inference_batch(np.zeros((1, 2))).final) == {"dir-1"}
    (watch / ".m2.json.tmp").write_text(json.dumps({"tag": "dir-2"}))  # in progress: ignored
    tick(2)
    assert job._slot.swaps == 1
    (watch / "bad.json").write_text("{")
    os.utime(watch / "bad.json", ns=(2 * 10**18, 2 * 10**18))
    tick(3)
    assert job.serving.version == "1" and not job.decisions()[-1].deployed
    (watch / ".m2.json.tmp").replace(watch / "m2.json")
    os.utime(watch / "m2.json", ns=(3 * 10**18, 3 * 10**18))
    tick(4)
    assert set(job.inference_batch(np.zeros((1, 2))).final) == {"dir-2"}
    job.close()
    clock.advance(10)


def test_il_hot_update_without_a_source_is_a_config_error(tmp_path, tag_backend) -> None:
    from sedna_core.errors import ConfigError

    with pytest.raises(ConfigError, match="MODEL_HOT_UPDATE_CONFIG"):
        _job(tmp_path, tag_backend, {"MODEL_HOT_UPDATE": "true"})
