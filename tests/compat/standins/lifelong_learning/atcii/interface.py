"""Stand-in for the model class of Sedna's ATCII lifelong-learning example.

``DATACONF`` and ``feature_process`` (a function of a pandas frame) are Sedna's own, loaded
from the example's ``interface.py``; only ``Estimator`` is replaced: the same XGBoost
classifier and method signatures, smaller (60 trees), written for XGBoost 2+ (early stopping
is a model parameter there, not a ``fit`` argument). ``predict`` prints a marker line so that
the test can follow the endless inference loop.
"""

import importlib.util
import json
import os
import sys

import numpy as np
import xgboost
from sklearn.model_selection import train_test_split

_spec = importlib.util.spec_from_file_location(
    "sedna_atcii_interface", os.path.join(os.path.dirname(sys.argv[0]), "interface.py")
)
_sedna = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_sedna)  # sets BACKEND_TYPE=SKLEARN, as Sedna's example does

DATACONF = _sedna.DATACONF
feature_process = _sedna.feature_process


class Estimator:
    def __init__(self):
        self.model = xgboost.XGBClassifier(
            learning_rate=0.3, n_estimators=60, max_depth=2, objective="multi:softprob",
            n_jobs=1, random_state=27,
        )  # fmt: skip
        self.classes = np.arange(3)  # XGBoost wants labels 0..k-1; ATCII's are 1..3

    def train(self, train_data, valid_data=None, save_best=True, metric_name="mlogloss",
              early_stopping_rounds=100):  # fmt: skip
        self.model.set_params(eval_metric=metric_name, early_stopping_rounds=early_stopping_rounds)
        x, y = train_data.x, np.asarray(train_data.y)
        self.classes = np.unique(y)
        if valid_data:
            x1, y1 = valid_data.x, np.asarray(valid_data.y)
        else:
            x, x1, y, y1 = train_test_split(x, y, test_size=0.1, random_state=42)
        keep = np.isin(y1, self.classes)
        codes = np.searchsorted(self.classes, y)
        valid = (x1[keep], np.searchsorted(self.classes, y1[keep]))
        self.model.fit(x, codes, eval_set=[valid], verbose=False)
        curves = self.model.evals_result()["validation_0"]
        return {k: float(np.mean(v)) for k, v in curves.items()}

    def predict(self, datas, **kwargs):
        print("sedna-standin: predicted", file=sys.stderr, flush=True)
        return self.classes[self.model.predict(datas)]

    def predict_proba(self, datas, **kwargs):
        return self.model.predict_proba(datas)

    def evaluate(self, test_data, **kwargs):
        from sklearn.metrics import precision_score

        return precision_score(test_data.y, self.predict(test_data.x), average="micro")

    def load(self, model_url):
        self.model.load_model(model_url)
        self.classes = np.asarray(json.loads(self.model.get_booster().attr("classes")))
        return self

    def save(self, model_path=None):
        if not model_path.endswith((".json", ".ubj")):
            model_path += ".json"
        self.model.get_booster().set_attr(classes=json.dumps(self.classes.tolist()))
        self.model.save_model(model_path)
        return model_path
