"""Stand-in for the model class of Sedna's surface-defect-detection federated example.

The same Keras estimator (methods and their arguments, ``BACKEND_TYPE=KERAS``, saving with
``self.model.save(model_path)``), with a smaller network so that it trains in seconds on a
CPU, and without ``np.float`` (removed from numpy).
"""

import os

import keras
from keras.layers import AveragePooling2D, Dense, Flatten
from keras.models import Sequential

os.environ["BACKEND_TYPE"] = "KERAS"


class Estimator:
    def __init__(self, **kwargs):
        """Model init"""
        keras.utils.set_random_seed(0)
        self.model = self.build()
        self.has_init = False

    @staticmethod
    def build():
        model = Sequential()
        model.add(keras.Input((128, 128, 3)))
        model.add(AveragePooling2D(pool_size=(16, 16)))
        model.add(Flatten())
        model.add(Dense(2, activation="softmax"))
        model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
        return model

    def train(self, train_data, valid_data=None, epochs=1, batch_size=1, learning_rate=0.01,
              validation_split=0.2):  # fmt: skip
        if not self.has_init:
            loss = keras.losses.CategoricalCrossentropy(from_logits=True)
            metrics = [keras.metrics.categorical_accuracy]
            optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
            self.model.compile(loss=loss, optimizer=optimizer, metrics=metrics)
            self.has_init = True
        x, y = train_data.x, train_data.y
        if valid_data:
            history = self.model.fit(
                x,
                y,
                epochs=int(epochs),
                batch_size=int(batch_size),
                validation_data=(valid_data.x, valid_data.y),
                verbose=0,
            )
        else:
            history = self.model.fit(
                x,
                y,
                epochs=int(epochs),
                batch_size=int(batch_size),
                validation_split=validation_split,
                verbose=0,
            )
        return {k: list(map(float, v)) for k, v in history.history.items()}

    def get_weights(self):
        return self.model.get_weights()

    def set_weights(self, weights):
        self.model.set_weights(weights)

    def load_weights(self, model):
        if not os.path.isfile(model):
            return
        return self.model.load_weights(model)

    def predict(self, datas):
        return self.model.predict(datas, verbose=0)

    def evaluate(self, test_data, **kwargs):
        pass

    def load(self, model_url):
        return self.load_weights(model_url)

    def save(self, model_path=None):
        return self.model.save(model_path)
