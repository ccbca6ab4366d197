"""Sedna's incremental-learning inference worker (helmet_detection/training/inference.py).

Unchanged except for the data: frames come from small ``.npy`` files in ``video_url`` (a
folder) instead of a video stream (so the loop ends when the frames do), and hard examples are
saved as ``.npy`` instead of JPEG drawings.
"""

import os

import numpy as np
from interface import Estimator
from sedna.common.config import Context
from sedna.common.log import LOGGER
from sedna.core.incremental_learning import IncrementalLearning

he_saved_url = Context.get_parameters("HE_SAVED_URL", "/tmp")
rsl_saved_url = Context.get_parameters("RESULT_SAVED_URL", "/tmp")
class_names = ["person", "helmet", "helmet_on", "helmet_off"]


def output_deal(is_hard_example, infer_result, nframe, img_rgb):
    labels, scores, bbox_list_pred = infer_result
    if is_hard_example:
        np.save(f"{he_saved_url}/{nframe}.npy", img_rgb)
    np.save(f"{rsl_saved_url}/{nframe}.npy", np.asarray(scores))


def mkdir(path):
    path = path.strip()
    path = path.rstrip()
    is_exists = os.path.exists(path)
    if not is_exists:
        os.makedirs(path)
        LOGGER.info(f"{path} is not exists, create the dir")


def deal_infer_rsl(model_output):
    all_classes, all_scores, all_bboxes = model_output
    rsl = []
    for c, s, bbox in zip(all_classes, all_scores, all_bboxes):
        bbox[0], bbox[1], bbox[2], bbox[3] = bbox[1], bbox[0], bbox[3], bbox[2]
        rsl.append(bbox.tolist() + [s, c])
    return rsl


def run():
    camera_address = Context.get_parameters("video_url")

    # get hard exmaple mining algorithm from config
    hard_example_mining = IncrementalLearning.get_hem_algorithm_from_config(threshold_img=0.9)

    input_shape_str = Context.get_parameters("input_shape")
    input_shape = tuple(int(v) for v in input_shape_str.split(","))

    # create Incremental Learning instance
    incremental_instance = IncrementalLearning(
        estimator=Estimator, hard_example_mining=hard_example_mining
    )

    # use video streams for testing
    for nframe, name in enumerate(sorted(os.listdir(camera_address))):
        img_rgb = np.load(os.path.join(camera_address, name))
        results, _, is_hard_example = incremental_instance.inference(
            img_rgb, post_process=deal_infer_rsl, input_shape=input_shape
        )
        output_deal(is_hard_example, results, nframe, img_rgb)


if __name__ == "__main__":
    mkdir(he_saved_url)
    mkdir(rsl_saved_url)
    run()
