"""Sedna's joint-inference example (cloud + edge programs) runs on sedna-core via sedna-compat.

Both programs run as processes with the variables Sedna's controller gives the pods; the
cloud listens on 127.0.0.1 (a free port), the edge finds it through BIG_MODEL_IP/PORT.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HEM_PARAMETERS = json.dumps(
    [{"key": "threshold_img", "value": "0.9"}, {"key": "threshold_box", "value": "0.9"}]
)


def _frames(folder: Path, n: int = 8) -> list[float]:
    folder.mkdir()
    levels = np.linspace(0.5, 1.0, n)  # darker frames give low scores: hard examples
    for i, level in enumerate(levels):
        frame = np.full((100, 40), level) + np.linspace(-0.01, 0.01, 40)[None, :]
        np.save(folder / f"frame_{i:03d}.npy", frame)
    return [float(v) for v in levels]


def test_helmet_detection_inference_example(tmp_path: Path, pods, lc) -> None:
    little = tmp_path / "little.json"
    little.write_text(json.dumps({"bias": 0.0}))
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"bias": 0.5}))
    levels = _frames(tmp_path / "video")
    out = tmp_path / "output"
    common = dict(
        NAMESPACE="default",
        JOB_NAME="helmet-detection-inference",
        SERVICE_NAME="helmet-detection-inference",
        LC_SERVER=lc.url,
        MODEL_LOAD_MODE="file",
    )
    cloud = pods.server(
        "joint_inference/big_model.py",
        pods.env(
            **common,
            WORKER_NAME="cloud-worker-0",
            MODEL_URL=big,
            BIG_MODEL_BIND_PORT=0,  # the controller's port; a free one here
        ),
        tmp_path,
    )
    pods.run(
        "joint_inference/little_model.py",
        pods.env(
            **common,
            WORKER_NAME="edge-worker-0",
            MODEL_URL=little,
            BIG_MODEL_IP="127.0.0.1",
            BIG_MODEL_PORT=cloud.port,
            HEM_NAME="IBT",
            HEM_PARAMETERS=HEM_PARAMETERS,
            video_url=tmp_path / "video",
            input_shape="100,40",
            all_examples_inference_output=out / "all",
            hard_example_edge_inference_output=out / "edge",
            hard_example_cloud_inference_output=out / "cloud",
        ),
        tmp_path,
    )
    records = [
        json.loads(line) for line in (out / "all" / "results.jsonl").read_text().splitlines()
    ]
    assert len(records) == len(levels)
    for record, level in zip(records, levels, strict=True):
        scores = [box[4] for box in record["edge_result"]]
        hard = sum(s <= 0.9 for s in scores) / len(scores) >= 1 - 0.9  # Sedna's IBT rule
        assert record["is_hard_example"] is hard, (level, scores)
        if hard:  # answered by the big model (bias 0.5: confident boxes)
            assert record["cloud_result"] is not None
            assert record["final_result"] == record["cloud_result"]
            assert all(box[4] == 1.0 for box in record["cloud_result"])
        else:
            assert record["cloud_result"] is None
            assert record["final_result"] == record["edge_result"]
    hard_frames = sum(r["is_hard_example"] for r in records)
    assert 0 < hard_frames < len(records)
    assert len(list((out / "cloud").iterdir())) == hard_frames
