"""KubeEdge Sedna's ``sedna`` import package, mapped onto sedna-core (distribution
``sedna-compat``).

Programs written for Sedna's Python SDK keep their imports::

    from sedna.core.joint_inference import JointInference, BigModelService
    from sedna.core.federated_learning import FederatedLearning
    from sedna.service.server import AggregationServer
    from sedna.common.config import Context, BaseConfig
    from sedna.common.class_factory import ClassFactory, ClassType
    from sedna.datasources import TxtDataParse, CSVDataParse

and run on sedna-core's jobs. What differs (secure defaults, safe formats, what is left out:
the Plato-based FL v2, MindSpore, multi-edge inference, BertRouter, TF1 ``.pb`` graphs) is in
sedna-core's ``docs/migrating-from-sedna.md``. Nothing here is imported until used.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
