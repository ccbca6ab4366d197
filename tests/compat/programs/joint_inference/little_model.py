"""Sedna's joint-inference edge worker (helmet_detection_inference_little/little_model.py).

Unchanged except for the data: frames are read from small ``.npy`` files in ``video_url`` (a
folder) instead of an RTSP stream, and results are written as JSON lines instead of images.
"""

import json
import os

import numpy as np
from interface import Estimator
from sedna.common.config import Context
from sedna.common.file_ops import FileOps
from sedna.common.log import LOGGER
from sedna.core.joint_inference import JointInference

camera_address = Context.get_parameters("video_url")
all_output_path = Context.get_parameters("all_examples_inference_output")
hard_example_edge_output_path = Context.get_parameters("hard_example_edge_inference_output")
hard_example_cloud_output_path = Context.get_parameters("hard_example_cloud_inference_output")


def preprocess(image, input_shape):
    """Resize (here: crop) the frame to the model's input shape."""
    return np.asarray(image)[: input_shape[0], : input_shape[1]]


def postprocess(model_output):
    """Keep boxes with a valid score, as the example's post-processing does."""
    return [box for box in model_output if 0 <= box[4] <= 1]


def output_deal(final_result, is_hard_example, cloud_result, edge_result, nframe, img_rgb):
    record = {
        "frame": nframe,
        "is_hard_example": bool(is_hard_example),
        "final_result": final_result,
        "edge_result": edge_result,
        "cloud_result": cloud_result,
    }
    with open(os.path.join(all_output_path, "results.jsonl"), "a") as fh:
        fh.write(json.dumps(record) + "\n")
    if not is_hard_example:
        return
    for folder, result in (
        (hard_example_edge_output_path, edge_result),
        (hard_example_cloud_output_path, cloud_result),
    ):
        with open(os.path.join(folder, f"{nframe}.json"), "w") as fh:
            json.dump(result, fh)


def main():
    hard_example_mining = JointInference.get_hem_algorithm_from_config(threshold_img=0.9)
    input_shape_str = Context.get_parameters("input_shape")
    input_shape = tuple(int(v) for v in input_shape_str.split(","))
    FileOps.clean_folder(
        [all_output_path, hard_example_cloud_output_path, hard_example_edge_output_path],
        clean=False,
    )
    inference_instance = JointInference(
        estimator=Estimator, hard_example_mining=hard_example_mining
    )
    frames = sorted(os.listdir(camera_address))
    for nframe, name in enumerate(frames):
        img_rgb = preprocess(np.load(os.path.join(camera_address, name)), input_shape)
        is_hard_example, final_result, edge_result, cloud_result = inference_instance.inference(
            img_rgb, post_process=postprocess, input_shape=input_shape
        )
        output_deal(final_result, is_hard_example, cloud_result, edge_result, nframe, img_rgb)
    LOGGER.info("processed %s frames", len(frames))


if __name__ == "__main__":
    main()
