"""Split-digits (5 tasks of two classes, seen in order, no task id at test time): the per-task
knowledge base keeps what it learned while naive fine-tuning forgets."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.model_selection import train_test_split

from sedna_core.jobs.lifelong import LifelongLearning


def test_ll_split_digits_accuracy_and_no_forgetting(tmp_path):
    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.5, stratify=y, random_state=0)
    ll = LifelongLearning(
        estimator=LogisticRegression(max_iter=2000),
        task_definition={"method": "TaskDefinitionByDataAttr", "param": {"attribute": ["task"]}},
        task_allocation={"method": "TaskAllocationBySVC", "param": {"gamma": 0.001}},
        unseen_sample_recognition="MahalanobisFilter",
        output_url=str(tmp_path),
    )
    naive = SGDClassifier(random_state=0)
    first_acc, ours, forgetful = {}, [], []
    for k in range(5):
        m = y_tr // 2 == k
        data = ({"pixels": x_tr[m], "task": np.full(m.sum(), f"t{k}")}, y_tr[m])
        ll.train(data) if k == 0 else ll.update(data)
        naive.partial_fit(x_tr[m], y_tr[m], classes=np.arange(10))
        pred, flags, _ = ll.inference({"pixels": x_te})
        t = y_te // 2 == k
        first_acc[k] = (pred[t] == y_te[t]).mean()
        # the newest task is known now; future tasks are flagged unseen
        assert flags[t].mean() < 0.15
        if k < 4:
            assert flags[y_te // 2 > k].mean() > 0.8
    final = pred
    for k in range(5):
        t = y_te // 2 == k
        ours.append((final[t] == y_te[t]).mean())
        forgetful.append((naive.predict(x_te[t]) == y_te[t]).mean())
    bwt = np.mean([ours[k] - first_acc[k] for k in range(4)])
    assert np.mean(ours) >= 0.95 and bwt >= -0.02
    assert np.mean(forgetful) < 0.5
    assert len(ll.task_index()["seen_task"]["task_groups"]) == 5
