"""Sedna's incremental-learning evaluation worker (helmet_detection/training/eval.py),
unchanged except for the data."""

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
    # load dataset.
    test_dataset_url = BaseConfig.test_dataset_url

    valid_data = TxtDataParse(data_type="valid", func=_load_txt_dataset)
    valid_data.parse(test_dataset_url, use_raw=True)

    class_names = Context.get_parameters("class_names")
    input_shape_str = Context.get_parameters("input_shape")
    input_shape = tuple(int(v) for v in input_shape_str.split(","))

    model = IncrementalLearning(estimator=Estimator)
    return model.evaluate(valid_data, class_names=class_names, input_shape=input_shape)


if __name__ == "__main__":
    main()
