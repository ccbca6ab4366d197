"""Sedna's joint-inference cloud worker (examples/joint_inference/helmet_detection_inference/
helmet_detection_inference_big/big_model.py), unchanged."""

from interface import Estimator
from sedna.core.joint_inference import BigModelService


def run():
    inference_instance = BigModelService(estimator=Estimator)
    inference_instance.start()


if __name__ == "__main__":
    run()
