"""Sedna's incremental-learning example (train, eval and inference workers) runs on sedna-core
via sedna-compat, each worker a process with the variables Sedna's controller sets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

HEM_PARAMETERS = json.dumps(
    [{"key": "threshold_img", "value": "0.9"}, {"key": "threshold_box", "value": "0.9"}]
)


def _frames(root: Path, name: str, levels: list[float]) -> Path:
    """Frames as ``.npy`` files and an index of ``frames/<f>.npy <label>`` lines."""
    folder = root / name
    folder.mkdir(parents=True)
    lines = []
    for i, level in enumerate(levels):
        np.save(folder / f"f_{i:03d}.npy", np.full((100, 40), level))
        lines.append(f"{name}/f_{i:03d}.npy {int(level > 0.75)}")
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
        class_names="person,helmet,helmet_on,helmet_off",
        input_shape="100,40",
        SEDNA_IL_WORKSPACE=output / "workspace",
    )

    # 1. train: the controller gives the dataset and where the model goes
    pods.run(
        "incremental_learning/train.py",
        pods.env(
            **common,
            WORKER_NAME="train-worker-0",
            TRAIN_DATASET_URL=train_index,
            MODEL_URL=f"{output}/train/1/",
            epochs=1,
            batch_size=4,
        ),
        tmp_path,
    )
    lc.wait_for(lambda ms: any(m["kind"] == "train" for m in ms))
    train = next(m for m in lc.bodies("train-worker-0") if m["kind"] == "train")
    assert train["status"] == "completed"
    assert train["ownerKind"] == "incrementallearningjob"
    assert train["results"][0]["metrics"]["loss"] >= 0
    models = [p for p in (output / "train" / "1").iterdir() if p.is_file()]
    assert len(models) == 1, "the deployed model is exported to MODEL_URL for the other workers"
    model = models[0]

    # 2. eval: the controller lists the models to compare in MODEL_URLS
    pods.run(
        "incremental_learning/eval.py",
        pods.env(
            **common,
            WORKER_NAME="eval-worker-0",
            TEST_DATASET_URL=test_index,
            MODEL_URLS=model,
            MODEL_URL=model,
        ),
        tmp_path,
    )
    lc.wait_for(lambda ms: any(m["kind"] == "eval" for m in ms))
    evaluation = next(m for m in lc.bodies("eval-worker-0") if m["kind"] == "eval")
    assert evaluation["status"] == "completed"
    metrics = evaluation["results"][0]["metrics"]
    assert set(metrics) == {"precision", "recall"} and metrics["recall"][0] > 0

    # 3. inference with hard-example mining (IBT from the CRD, threshold_img overridden)
    video = data / "video"
    video.mkdir()
    levels = np.linspace(0.5, 1.0, 6)
    for i, level in enumerate(levels):
        np.save(video / f"frame_{i:03d}.npy", np.full((100, 40), level))
    pods.run(
        "incremental_learning/inference.py",
        pods.env(
            **common,
            WORKER_NAME="infer-worker-0",
            MODEL_URL=model,
            HEM_NAME="IBT",
            HEM_PARAMETERS=HEM_PARAMETERS,
            video_url=video,
            HE_SAVED_URL=output / "hard_examples",
            RESULT_SAVED_URL=output / "results",
        ),
        tmp_path,
    )
    assert len(list((output / "results").glob("*.npy"))) == len(levels)
    bias = json.loads(model.read_text())["bias"]
    expected_hard = {i for i, level in enumerate(levels) if level + bias <= 0.9}
    saved = {int(p.stem) for p in (output / "hard_examples").glob("*.npy") if p.stem.isdigit()}
    assert saved == expected_hard and 0 < len(saved) < len(levels)
