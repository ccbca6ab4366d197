"""Sedna's incremental-learning example (helmet detection: ``train.py``, ``eval.py`` and
``inference.py``, unchanged) runs on sedna-core through sedna-compat, each worker a process with
the variables Sedna's controller sets, each reporting to the local controller once per phase
as Sedna's workers do."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

HEM_PARAMETERS = json.dumps(
    [{"key": "threshold_img", "value": "0.9"}, {"key": "threshold_box", "value": "0.9"}]
)


def _frame(level: float) -> np.ndarray:
    return np.full((100, 40, 3), round(level * 255), dtype=np.uint8)


def _frames(root: Path, name: str, levels: list[float]) -> Path:
    """Frames as images and an index of ``<name>/f_<i>.png <label>`` lines (the dataset)."""
    folder = root / name
    folder.mkdir(parents=True)
    lines = []
    for i, level in enumerate(levels):
        cv2.imwrite(str(folder / f"f_{i:03d}.png"), _frame(level))
        lines.append(f"{name}/f_{i:03d}.png {int(level > 0.75)}")
    index = root / f"{name}.txt"
    index.write_text("\n".join(lines) + "\n")
    return index


def test_helmet_detection_incremental_example(tmp_path: Path, pods, lc) -> None:
    data = tmp_path / "data"
    train_index = _frames(data, "train", list(np.linspace(0.5, 1.0, 20)))
    test_index = _frames(data, "test", list(np.linspace(0.55, 0.95, 9)))
    output = tmp_path / "output"
    common = dict(
        NAMESPACE="default",
        JOB_NAME="helmet-detection-demo",
        LC_SERVER=lc.url,
        ORIGINAL_DATASET_URL=train_index,
        class_names="person,helmet,helmet-on,helmet-off",
        input_shape="100,40",
        SEDNA_IL_WORKSPACE=output / "workspace",
    )

    # 1. train: the dataset, the output folder for the model, the CRD's hyperparameters
    pods.run(
        "incremental_learning/helmet_detection/training/train.py",
        pods.env(**common, WORKER_NAME="train-worker-0", TRAIN_DATASET_URL=train_index,
                 MODEL_URL=f"{output}/train/1/", epochs=1, batch_size=32, obj_threshold=0.3,
                 nms_threshold=0.4),
        tmp_path,
    )  # fmt: skip
    (train,) = lc.bodies("train-worker-0")  # one message for the train phase, as Sedna
    assert (train["kind"], train["status"]) == ("train", "completed")
    assert train["ownerKind"] == "incrementallearningjob"
    (result,) = train["results"]
    model = Path(result["url"])
    assert model.parent == output / "train" / "1" and model.is_file()
    assert result["metrics"]["loss"] >= 0
    assert [p for p in (output / "train" / "1").iterdir()] == [model]

    # 2. eval: the controller lists the models to compare in MODEL_URLS
    pods.run(
        "incremental_learning/helmet_detection/training/eval.py",
        pods.env(**common, WORKER_NAME="eval-worker-0", TEST_DATASET_URL=test_index,
                 MODEL_URLS=model, MODEL_URL=model),
        tmp_path,
    )  # fmt: skip
    (evaluation,) = lc.bodies("eval-worker-0")
    assert (evaluation["kind"], evaluation["status"]) == ("eval", "completed")
    (scores,) = evaluation["results"]
    assert scores["url"] == str(model)
    assert set(scores["metrics"]) == {"precision", "recall"} and scores["metrics"]["recall"][0] > 0

    # 3. inference on a video (an image sequence) with hard-example mining: IBT from the CRD,
    # threshold_img overridden by the program; hot update enabled as the CRD asks
    video = data / "video"
    video.mkdir()
    levels = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0]  # the last frame only marks the end
    for i in range(10 * (len(levels) - 1) + 1):  # the program takes every tenth frame
        cv2.imwrite(str(video / f"{i:03d}.png"), _frame(levels[i // 10]))
    hot = tmp_path / "hot_update.json"
    hot.write_text(json.dumps({"model_config": {"model_path": str(model),
                                                "model_update_time": "1"}}))  # fmt: skip
    pods.run_until_predicted(
        "incremental_learning/helmet_detection/training/inference.py",
        pods.env(**common, WORKER_NAME="infer-worker-0", MODEL_URL=model, HEM_NAME="IBT",
                 HEM_PARAMETERS=HEM_PARAMETERS, video_url=video / "%03d.png",
                 HE_SAVED_URL=output / "hard_examples", RESULT_SAVED_URL=output / "results",
                 MODEL_HOT_UPDATE="true", MODEL_HOT_UPDATE_CONFIG=hot),
        tmp_path,
        count=len(levels),
    )  # fmt: skip
    nframes = [1 + 10 * i for i in range(len(levels) - 1)]
    results = {int(p.stem) for p in (output / "results").glob("*.jpeg")}
    assert set(nframes) <= results
    bias = json.loads(model.read_text())["bias"]
    expected_hard = {
        n for n, level in zip(nframes, levels, strict=False) if level + bias <= 0.9 + 1e-9
    }
    hard = {int(p.stem) for p in (output / "hard_examples").glob("*.jpeg")} & set(nframes)
    assert hard == expected_hard and 0 < len(hard) < len(nframes)
