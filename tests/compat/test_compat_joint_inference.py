"""Sedna's joint-inference example (helmet detection: ``big_model.py`` in the cloud,
``little_model.py`` on the edge, unchanged) runs on sedna-core through sedna-compat.

Both programs run as processes with the variables Sedna's controller gives the pods; the
cloud listens on 127.0.0.1 (a free port), the edge finds it through BIG_MODEL_IP/PORT and
reads its video (an image sequence here) through OpenCV as the example does.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

HEM_PARAMETERS = json.dumps(
    [{"key": "threshold_img", "value": "0.9"}, {"key": "threshold_box", "value": "0.9"}]
)


def test_helmet_detection_inference_example(tmp_path: Path, pods, lc) -> None:
    little = tmp_path / "little.json"
    little.write_text(json.dumps({"bias": 0.0}))
    big = tmp_path / "big.json"
    big.write_text(json.dumps({"bias": 0.5}))
    # darker frames give low scores: hard examples; the last one only marks the end
    levels = [0.5, 0.6, 0.7, 0.95, 1.0, 0.8, 1.0]
    video = tmp_path / "video"
    video.mkdir()
    for i in range(10 * (len(levels) - 1) + 1):  # the program takes every tenth frame
        frame = np.full((100, 40, 3), round(levels[i // 10] * 255), dtype=np.uint8)
        cv2.imwrite(str(video / f"{i:03d}.png"), frame)
    out = tmp_path / "output"
    common = dict(
        NAMESPACE="default",
        JOB_NAME="helmet-detection-inference",
        SERVICE_NAME="helmet-detection-inference",
        LC_SERVER=lc.url,
        MODEL_LOAD_MODE="file",
    )
    cloud = pods.server(
        "joint_inference/helmet_detection_inference/big_model/big_model.py",
        pods.env(**common, WORKER_NAME="cloud-worker-0", MODEL_URL=big,
                 BIG_MODEL_BIND_PORT=0),  # the controller's port; a free one here
        tmp_path,
    )  # fmt: skip
    pods.run_until_predicted(
        "joint_inference/helmet_detection_inference/little_model/little_model.py",
        pods.env(
            **common,
            WORKER_NAME="edge-worker-0",
            MODEL_URL=little,
            BIG_MODEL_IP="127.0.0.1",
            BIG_MODEL_PORT=cloud.port,
            HEM_NAME="IBT",
            HEM_PARAMETERS=HEM_PARAMETERS,
            video_url=video / "%03d.png",
            all_examples_inference_output=out / "all",
            hard_example_edge_inference_output=out / "edge",
            hard_example_cloud_inference_output=out / "cloud",
        ),
        tmp_path,
        count=len(levels),
    )
    nframes = [1 + 10 * i for i in range(len(levels) - 1)]
    assert set(nframes) <= {int(p.stem) for p in (out / "all").glob("*.jpeg")}
    # Sedna's IBT rule on the edge's boxes (all of a frame's boxes score its brightness)
    expected_hard = {n for n, level in zip(nframes, levels, strict=False) if level <= 0.9}
    edge = {int(p.stem) for p in (out / "edge").glob("*.jpeg")} & set(nframes)
    cloud_answers = {int(p.stem) for p in (out / "cloud").glob("*.jpeg")} & set(nframes)
    assert edge == expected_hard and 0 < len(edge) < len(nframes)
    assert cloud_answers == expected_hard  # every hard frame was answered by the big model
