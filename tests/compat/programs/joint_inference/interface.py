"""The user's model code of the joint-inference example (Sedna's helmet detection), with a
tiny numpy detector instead of the TF1 YOLOv3 graphs: one box per tenth of the frame, each
box's score the mean brightness of its strip plus the model's bias."""

import json

import numpy as np


class Estimator:
    def __init__(self, **kwargs):
        self.bias = 0.0

    def load(self, model_url=""):
        with open(model_url) as fh:
            self.bias = float(json.load(fh)["bias"])

    def predict(self, data, **kwargs):
        img = np.asarray(data, dtype=np.float64)
        strips = np.array_split(img, 10, axis=0)
        boxes = []
        for i, strip in enumerate(strips):
            score = float(np.clip(strip.mean() + self.bias, 0.0, 1.0))
            boxes.append([0.0, float(i * 10), 10.0, float(i * 10 + 10), score, 1.0])
        return boxes
