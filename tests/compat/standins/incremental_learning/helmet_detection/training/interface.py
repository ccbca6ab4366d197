"""Stand-in for the model class of Sedna's helmet-detection incremental-learning example.

Sedna's model is a TF1 YOLOv3; this one is a tiny brightness "detector" with the same methods
and outputs: it learns a bias from labelled frames and returns ``(classes, scores, boxes)``.
Sedna's ``train.py`` also makes two TF1 calls of its own (``tf.set_random_seed``,
``tf.flags.DEFINE_*``); TensorFlow 2 keeps them under ``tf.compat.v1``, mapped here with the
rest of the TF1 model. ``predict`` prints a marker line so that the test can follow the endless
video loop of ``inference.py``.
"""

import json
import os
import sys

import cv2
import numpy as np
import tensorflow as tf

os.environ["BACKEND_TYPE"] = "TENSORFLOW"  # as Sedna's interface.py: its class drives TF itself
tf.set_random_seed = tf.compat.v1.set_random_seed
tf.flags = tf.compat.v1.flags


def _read(row):
    """A raw training row: ``<frame.png> <label>`` (the index line, its path resolved)."""
    path, label = str(row).rsplit(" ", 1)
    return cv2.imread(path)[:, :, ::-1], int(label)


class Estimator:
    def __init__(self, **kwargs):
        self.bias = 0.0

    def train(self, train_data, valid_data=None, **kwargs):
        frames = [_read(row) for row in train_data.x]
        helmets = [f.mean() / 255.0 for f, label in frames if label == 1]
        self.bias = float(np.clip(0.95 - np.mean(helmets), 0.0, 0.5)) if helmets else 0.0
        return {"loss": float(abs(0.95 - np.mean(helmets) - self.bias)) if helmets else 1.0}

    def predict(self, data, **kwargs):
        print("sedna-standin: predicted", file=sys.stderr, flush=True)
        img = np.asarray(data, dtype=np.float64) / 255.0
        strips = np.array_split(img, 10, axis=0)
        scores = np.clip(np.array([s.mean() for s in strips]) + self.bias, 0.0, 1.0)
        boxes = np.array([[i * 10.0, 0.0, i * 10.0 + 10.0, 10.0] for i in range(10)])
        return np.ones(10, dtype=int), scores, boxes

    def evaluate(self, valid_data, **kwargs):
        frames = [_read(row) for row in valid_data.x]
        found = [float(np.mean(self.predict(f)[1])) > 0.9 for f, _ in frames]
        truth = [label == 1 for _, label in frames]
        tp = sum(f and t for f, t in zip(found, truth, strict=False))
        return {"precision": [tp / max(sum(found), 1)], "recall": [tp / max(sum(truth), 1)]}

    def save(self, model_path):
        with open(model_path, "w") as fh:
            json.dump({"bias": self.bias}, fh)
        return model_path

    def load(self, model_url):
        with open(model_url) as fh:
            self.bias = float(json.load(fh)["bias"])
