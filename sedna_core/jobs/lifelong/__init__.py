"""Lifelong learning (Sedna's ``LifelongLearning``): a model per task in a knowledge base,
task allocation and unseen-task detection at inference. See ``docs/lifelong-learning.md``."""

from sedna_core.jobs.lifelong._job import LifelongLearning
from sedna_core.jobs.lifelong._state import Group, Knowledge

__all__ = ["Group", "Knowledge", "LifelongLearning"]
