"""Keras 3 backend for sedna-core (TensorFlow or torch as Keras backend)."""

__version__ = "0.1.0"
