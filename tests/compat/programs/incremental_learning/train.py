"""Sedna's incremental-learning training worker (examples/incremental_learning/
helmet_detection/training/train.py). Unchanged except for the data and the model's
hyper-parameters (a tiny numpy model instead of YOLOv3)."""

import os

from interface import Estimator
from sedna.common.config import BaseConfig, Context
from sedna.core.incremental_learning import IncrementalLearning
from sedna.datasources import TxtDataParse


def _load_txt_dataset(dataset_url):
    # use original dataset url,
    # see https://github.com/kubeedge/sedna/issues/35
    original_dataset_url = Context.get_parameters("original_dataset_url")
    return os.path.join(os.path.dirname(original_dataset_url), dataset_url)


def main():
    class_names = Context.get_parameters("class_names")
    # load dataset.
    train_dataset_url = BaseConfig.train_dataset_url
    train_data = TxtDataParse(data_type="train", func=_load_txt_dataset)
    train_data.parse(train_dataset_url, use_raw=True)

    # read parameters from deployment config.
    epochs = int(Context.get_parameters("epochs"))
    batch_size = int(Context.get_parameters("batch_size"))
    input_shape = tuple(int(v) for v in Context.get_parameters("input_shape").split(","))

    incremental_instance = IncrementalLearning(estimator=Estimator)
    return incremental_instance.train(
        train_data=train_data,
        epochs=epochs,
        batch_size=batch_size,
        class_names=class_names,
        input_shape=input_shape,
    )


if __name__ == "__main__":
    main()
