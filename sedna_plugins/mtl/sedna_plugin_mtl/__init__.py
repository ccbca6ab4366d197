"""Lifelong-learning task algorithms for sedna-core: task definition, allocation, remodeling,
integration, unseen-task detection and update decisions.

Users name them in a job (``task_definition="TaskDefinitionByDataAttr"``); the classes live in
:mod:`.definition`, :mod:`.allocation`, :mod:`.grouping`, :mod:`.detection` and :mod:`.update`.
"""

__version__ = "0.1.0"
