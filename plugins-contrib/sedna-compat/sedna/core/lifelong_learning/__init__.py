"""Sedna's ``sedna.core.lifelong_learning``: sedna-core's ``LifelongLearning`` as it is.

It takes both of Sedna's signatures (``seen_estimator=``/``estimator=``, ``task_mining=``,
``unseen_task_detect=``); the knowledge base index is JSON plus content-addressed artifacts
instead of ``index.pkl`` (convert an old one with ``sedna kb import-sedna``). Given Sedna's
``MODEL_URLS=<OUTPUT_URL>/deploy/index.pkl``, the job reads the JSON index beside it.
"""

from sedna_core.jobs.lifelong import LifelongLearning

__all__ = ["LifelongLearning"]
