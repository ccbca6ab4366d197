"""The user's model code of the lifelong-learning example (Sedna's ATCII thermal comfort).

Two changes from Sedna's: ``feature_process`` is written per row (sedna-core's
``CSVDataParse`` applies ``func`` to each row, without pandas) and the model is a numpy
nearest-centroid classifier instead of XGBoost (same methods).
"""

import json

import numpy as np

DATACONF = {
    "ATTRIBUTES": ["Season", "Cooling startegy_building level"],
    "LABEL": "Thermal preference",
}


def feature_process(row):
    row.pop("City", None)
    for feature in list(row):
        if feature in ["Season", "Cooling startegy_building level"]:
            continue
        value = row[feature]
        row[feature] = float(value) if value else 0.0
    label = row.get("Thermal preference")
    row["Thermal preference"] = int(float(label)) if label else 1
    return row


class Estimator:
    def __init__(self, **kwargs):
        self.centroids = {}

    def train(self, train_data, valid_data=None, metric_name="mlogloss", **kwargs):
        x = np.asarray(train_data.x, dtype=np.float64)
        y = np.asarray(train_data.y)
        self.centroids = {int(c): x[y == c].mean(axis=0).tolist() for c in np.unique(y)}
        return {metric_name: 0.0}

    def predict(self, datas, **kwargs):
        x = np.asarray(datas, dtype=np.float64)
        labels = sorted(self.centroids)
        centres = np.array([self.centroids[c] for c in labels])
        dist = ((x[:, None, :] - centres[None, :, :]) ** 2).sum(axis=-1)
        return np.array(labels)[dist.argmin(axis=1)]

    def evaluate(self, test_data, **kwargs):
        pred = self.predict(test_data.x)
        return {"precision_score": float(np.mean(pred == np.asarray(test_data.y)))}

    def load(self, model_url):
        with open(model_url) as fh:
            self.centroids = {int(k): v for k, v in json.load(fh).items()}
        return self

    def save(self, model_path=None):
        with open(model_path, "w") as fh:
            json.dump(self.centroids, fh)
        return model_path
