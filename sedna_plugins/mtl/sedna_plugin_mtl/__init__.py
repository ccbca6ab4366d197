"""Lifelong-learning task algorithms for sedna-core: task definition, allocation, remodeling, integration, unseen-task detection."""

__version__ = "0.1.0"
