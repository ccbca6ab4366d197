"""Stand-in for the cloud model class of Sedna's helmet-detection joint-inference example.

Sedna's is a TF1 YOLOv3 frozen graph; this one is a tiny numpy "detector" with the same
methods and output shape: one box ``[x1, y1, x2, y2, score, class]`` per tenth of the frame,
each box's score the brightness of its strip plus the model's bias (read from ``MODEL_URL``).
(``predict`` prints the same marker line as the edge's; nobody waits for it here.)
"""

import json
import os
import sys

import numpy as np

os.environ["BACKEND_TYPE"] = "TENSORFLOW"  # as Sedna's interface.py: its class drives TF itself


class Estimator:
    def __init__(self, **kwargs):
        self.bias = 0.0

    def load(self, model_url=""):
        with open(model_url) as fh:
            self.bias = float(json.load(fh)["bias"])

    def predict(self, data, **kwargs):
        print("sedna-standin: predicted", file=sys.stderr, flush=True)
        img = np.asarray(data, dtype=np.float64) / 255.0
        boxes = []
        for i, strip in enumerate(np.array_split(img, 10, axis=0)):
            score = float(np.clip(strip.mean() + self.bias, 0.0, 1.0))
            boxes.append([float(i * 10), 0.0, float(i * 10 + 10), 10.0, score, 1.0])
        return boxes
