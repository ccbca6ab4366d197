"""Sedna's federated-learning training worker (surface_defect_detection/training_worker/
train.py). Unchanged except for the data: each index line names a small ``.npy`` feature
vector instead of a 128x128 image."""

import os

import numpy as np
from interface import Estimator
from sedna.common.config import BaseConfig, Context
from sedna.core.federated_learning import FederatedLearning
from sedna.datasources import TxtDataParse


def image_process(line):
    file_path, label = line.split(",")
    original_dataset_url = Context.get_parameters("original_dataset_url")
    root_path = os.path.dirname(original_dataset_url)
    file_path = os.path.join(root_path, file_path)
    data = np.load(file_path)
    label = [0, 1] if int(label) == 0 else [1, 0]
    data = np.array(data)
    label = np.array(label)
    return [data, label]


def main():
    # load dataset.
    train_dataset_url = BaseConfig.train_dataset_url
    train_data = TxtDataParse(data_type="train", func=image_process)
    train_data.parse(train_dataset_url)

    epochs = int(Context.get_parameters("epochs", 1))
    batch_size = int(Context.get_parameters("batch_size", 1))
    aggregation_algorithm = Context.get_parameters("aggregation_algorithm", "FedAvg")
    learning_rate = float(Context.get_parameters("learning_rate", 0.001))
    validation = float(Context.get_parameters("validation", 0.2))

    fl_model = FederatedLearning(estimator=Estimator, aggregation=aggregation_algorithm)

    train_jobs = fl_model.train(
        train_data=train_data,
        valid_data=None,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        validation=validation,
    )
    return train_jobs


if __name__ == "__main__":
    main()
