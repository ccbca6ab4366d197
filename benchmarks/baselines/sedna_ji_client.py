"""Sedna's joint-inference edge re-created for comparison ("Sedna's way").

Mirrors ``sedna.service.client.http_request``/``ModelClient`` and ``JointInference.inference``
(reference §2.2, §10.1): ``requests.request`` per call (a new connection each time), JSON body
``{"data": x.tolist(), "post_process": None}``, answer ``{"result": [...]}``; up to 5 attempts
with 3 s waits when the answer is not a 200; the miner judges the whole call's edge result, so a
call goes to the cloud all or nothing. Counters are kept the way Sedna keeps them (a hard call
counts as two inferences) so the benchmark can show the difference.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["SednaJointInference", "SednaModelClient", "http_request"]


def http_request(
    url: str, method: str = "GET", attempts: int = 5, wait: float = 3.0, **kwargs: Any
) -> Any:
    """Sedna's ``http_request``: JSON on 200, else retried; no socket timeout."""
    import requests

    for attempt in range(attempts):
        try:
            response = requests.request(method=method, url=url, **kwargs)
            if response.status_code == 200:
                return response.json()
        except requests.exceptions.RequestException:
            pass
        if attempt + 1 < attempts:
            time.sleep(wait)
    raise RuntimeError(f"{url}: no answer after {attempts} attempts")


class SednaModelClient:
    """``ModelClient(service_name, host, port)``: ``inference(x)`` posts ``{**kw, "data": x}``."""

    def __init__(self, service_name: str, host: str, port: int) -> None:
        self.endpoint = f"http://{host}:{port}/{service_name}"

    def inference(self, x: Any, **kwargs: Any) -> Any:
        body = dict(kwargs)
        body["data"] = x
        return http_request(f"{self.endpoint}/predict", method="POST", json=body)


class SednaJointInference:
    """``JointInference.inference`` in ``inference-then-mining`` mode, as Sedna wrote it."""

    def __init__(
        self,
        edge_predict: Callable[[np.ndarray], Any],
        hem: Callable[[Any], bool] | None,
        service_name: str,
        host: str,
        port: int,
    ) -> None:
        self.edge_predict = edge_predict
        self.hem = hem
        self.cloud = SednaModelClient(service_name, host, port)
        self.inference_number = 0
        self.hard_example_number = 0

    def inference(self, data: np.ndarray, post_process: Any = None) -> list[Any]:
        edge_result = self.edge_predict(data)
        res = edge_result
        self.inference_number += 1
        is_hard, cloud_result = False, None
        if self.hem is not None and self.hem(res):
            is_hard = True
            try:
                cloud_data = self.cloud.inference(data.tolist(), post_process=post_process)
                cloud_result = cloud_data["result"]
                res = cloud_result
            except Exception:  # Sedna logs and keeps the edge result
                pass
            self.inference_number += 1  # Sedna's double count
            self.hard_example_number += 1
        return [is_hard, res, edge_result, cloud_result]
