"""BigModelService over real loopback HTTP: Sedna's JSON API, the binary format, validation,
authentication, and health checks while a prediction runs."""

from __future__ import annotations

import concurrent.futures
import json

import numpy as np
import pytest
import requests

from sedna_core import wire
from sedna_core.config.joint_inference import BigModelServiceConfig
from sedna_core.errors import ConfigError, JobError
from sedna_core.jobs.joint_inference import BigModelService, TSBigModelService

TIMEOUT = 10


def post_json(svc: BigModelService, body: object, **kwargs: object) -> requests.Response:
    return requests.post(svc.predict_url, json=body, timeout=TIMEOUT, **kwargs)  # type: ignore[arg-type]


def post_tensors(svc: BigModelService, tensors: object, **kwargs: object) -> requests.Response:
    return requests.post(
        svc.predict_url,
        data=wire.encode(tensors),  # type: ignore[arg-type]
        headers={"Content-Type": wire.CONTENT_TYPE},
        timeout=TIMEOUT,
        **kwargs,  # type: ignore[arg-type]
    )


def test_sedna_json_api(serve, models, samples):
    svc = serve(input_shape=(8,))
    # Sedna's edge also sends post_process (ignored by Sedna's server, and by ours)
    resp = post_json(svc, {"data": samples[:5].tolist(), "post_process": None, "callback": None})
    assert resp.status_code == 200
    result = np.array(resp.json()["result"])
    np.testing.assert_allclose(result, models.cloud.predict(samples[:5]))
    assert svc.predict_url.endswith("/ji/predict")
    infos = requests.get(svc.url + "/ji", timeout=TIMEOUT).json()["infos"]
    assert {"path": "/ji/predict", "name": "predict"} in infos


def test_binary_api(serve, models, samples):
    svc = serve()
    resp = post_tensors(svc, {"data": samples.astype(np.float32)})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == wire.CONTENT_TYPE
    result = wire.decode(resp.content)["result"]
    np.testing.assert_allclose(result, models.cloud.predict(samples.astype(np.float32)))


def test_non_numeric_json_reaches_the_model_as_sent(serve):
    class Echo:
        def fit(self, x, y):
            return self

        def predict(self, data):
            return [f"{item['text']}!" if isinstance(item, dict) else "n/a" for item in data]

    svc = serve(Echo())
    resp = post_json(svc, {"data": [{"text": "hi"}, {"text": "yo"}]})
    assert resp.json() == {"result": ["hi!", "yo!"]}
    # a result that is not an array is answered as JSON, even to a binary request
    resp = post_tensors(svc, {"data": np.zeros((2, 2))})
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"result": ["n/a", "n/a"]}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "says"),
    [
        (b"{not json", "application/json", 400, "not valid JSON"),
        (json.dumps({"rows": [1]}).encode(), "application/json", 400, '{"data": [...]}'),
        (json.dumps({"data": 5}).encode(), "application/json", 400, "must be a list"),
        (json.dumps({"data": [[1.0] * 3]}).encode(), "application/json", 400, "expected (n, 8)"),
        (json.dumps({"data": [["a"] * 8]}).encode(), "application/json", 400, "non-numeric"),
        (b"\x00garbage", wire.CONTENT_TYPE, 400, ""),
        (wire.encode({"data": np.zeros((2, 4))}), wire.CONTENT_TYPE, 400, "got shape (2, 4)"),
        (wire.encode({"data": np.zeros((2, 8), complex)}), wire.CONTENT_TYPE, 400, "complex"),
        (wire.encode({"other": np.zeros((2, 8))}), wire.CONTENT_TYPE, 400, "'data'"),
        (wire.encode({"data": np.zeros((0, 8))}), wire.CONTENT_TYPE, 400, "(0, 8)"),
        (b"data=1", "application/x-www-form-urlencoded", 415, "Content-Type"),
    ],
)
def test_malformed_requests_get_clear_errors(serve, body, content_type, status, says):
    svc = serve(input_shape=(8,), input_dtype="float64")
    resp = requests.post(
        svc.predict_url, data=body, headers={"Content-Type": content_type}, timeout=TIMEOUT
    )
    assert resp.status_code == status
    error = resp.json()["error"]
    assert says in error["message"]
    # the service keeps serving
    assert requests.get(svc.url + "/healthz", timeout=TIMEOUT).status_code == 200


def test_model_errors_are_400_with_its_message(serve, samples):
    svc = serve()  # no input_shape: the model itself rejects the data
    resp = post_json(svc, {"data": [[1.0, 2.0]]})
    assert resp.status_code == 400
    assert "the model rejected the data" in resp.json()["error"]["message"]


def test_request_size_limit(serve, samples):
    svc = serve(
        service_config=BigModelServiceConfig(host="127.0.0.1", port=0, max_request_size=1024)
    )
    resp = post_tensors(svc, {"data": np.zeros((100, 8))})
    assert resp.status_code == 413


def test_authentication_required(serve, models, samples):
    svc = serve(token="s3cret")
    assert post_json(svc, {"data": samples[:1].tolist()}).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert post_json(svc, {"data": samples[:1].tolist()}, headers=wrong).status_code == 401
    good = {"Authorization": "Bearer s3cret"}
    assert post_json(svc, {"data": samples[:1].tolist()}, headers=good).status_code == 200
    assert requests.get(svc.url + "/healthz", timeout=TIMEOUT).status_code == 200


def test_non_loopback_bind_needs_a_token(models):
    svc = BigModelService(models.cloud, host="0.0.0.0", port=0)
    with pytest.raises(ConfigError):
        svc.start(block=False)
    svc.close()


def test_health_answers_while_predicting_and_clients_are_served_concurrently(
    serve, models, samples
):
    models.cloud.gate = gate = __import__("threading").Event()
    svc = serve(workers=2)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        slow = [pool.submit(post_json, svc, {"data": samples[i : i + 2].tolist()}) for i in (0, 2)]
        assert models.cloud.entered.wait(TIMEOUT)
        # a prediction is running (blocked): the event loop still answers
        health = requests.get(svc.url + "/healthz", timeout=TIMEOUT)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        gate.set()
        results = [f.result(TIMEOUT) for f in slow]
    assert all(r.status_code == 200 for r in results)
    metrics = requests.get(svc.url + "/metrics", timeout=TIMEOUT).text
    assert 'sedna_ji_predict_samples_total{format="json"} 4' in metrics


def test_bind_and_name_from_sedna_environment(monkeypatch, models):
    monkeypatch.setenv("BIG_MODEL_BIND_IP", "127.0.0.1")
    monkeypatch.setenv("BIG_MODEL_BIND_PORT", "0")
    monkeypatch.setenv("JOB_NAME", "helmet")
    with TSBigModelService(estimator=models.cloud) as svc:  # Sedna's old name
        assert svc.predict_url.startswith("http://127.0.0.1:")
        assert svc.predict_url.endswith("/helmet/predict")
        resp = requests.post(svc.predict_url, json={"data": [[0.0] * 8]}, timeout=TIMEOUT)
        assert resp.status_code == 200


def test_model_file_is_loaded_on_start(serve, models, tmp_path):
    w = np.eye(8, 3)
    np.savez(tmp_path / "big.npz", w=w)
    svc = serve(model_path=str(tmp_path / "big.npz"))
    resp = post_json(svc, {"data": [[5.0, 0, 0, 0, 0, 0, 0, 0]]})
    assert np.argmax(resp.json()["result"][0]) == 0
    np.testing.assert_array_equal(models.cloud.w, w)


def test_refuses_bad_job_names_and_missing_estimators(models):
    with pytest.raises(ConfigError, match="JOB_NAME"):
        BigModelService(models.cloud, job_name="a/b")
    with pytest.raises(JobError):
        BigModelService(None, job_name="ok")


def test_tiny_predictions_may_run_inline_big_ones_never():
    from sedna_core.jobs.joint_inference._service import _Placement

    placement = _Placement(inline_below=0.001)
    assert not placement.inline(1)  # no measurements yet: in a thread
    for _ in range(_Placement.WARMUP):
        placement.record(0.0001, 1)
    assert placement.inline(1)  # 0.1 ms expected: on the loop
    assert not placement.inline(100)  # 10 ms expected: in a thread
    placement.record(0.5, 1)  # a slow one pushes the estimate up at once
    assert not placement.inline(1)
    never = _Placement(inline_below=0.0)
    for _ in range(20):
        never.record(1e-9, 1)
    assert not never.inline(1)


def test_placement_estimates_each_request_size_on_its_own():
    from sedna_core.jobs.joint_inference._service import _Placement

    placement = _Placement(inline_below=0.0005)
    for _ in range(_Placement.WARMUP):
        placement.record(0.0001, 1)  # one sample: 0.1 ms, mostly the model's fixed cost
    # 64 samples borrow the one-sample rate (6.4 ms): an over-estimate, so a thread
    assert placement.expected(64) == pytest.approx(0.0064)
    assert not placement.inline(64)
    for _ in range(_Placement.WARMUP):
        placement.record(0.0002, 64)  # a batch of 64 takes 0.2 ms
    assert placement.inline(64) and placement.inline(100)  # 64..127 share the estimate
    assert placement.inline(1)  # the single-sample estimate is unchanged
    assert not placement.inline(3000)  # borrows 64's rate: 9.4 ms
