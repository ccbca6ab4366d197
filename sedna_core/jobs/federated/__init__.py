"""Federated learning: the client job and the aggregation server.

::

    from sedna_core import AggregationServer, FederatedLearning

    AggregationServer(aggregation="FedAvg", exit_round=10, participants_count=4).start()
    FederatedLearning(estimator=model, aggregation="FedAvg").train(train_data)

See ``docs/federated-learning.md`` for the protocol, the settings and the guarantees.
"""

from sedna_core.errors import InvalidUpdateError
from sedna_core.jobs.federated._client import FederatedLearning
from sedna_core.jobs.federated._protocol import PROTOCOL_VERSION, WS_PATH
from sedna_core.jobs.federated._rounds import FederatedResult
from sedna_core.jobs.federated._server import AggregationServer

__all__ = [
    "PROTOCOL_VERSION",
    "WS_PATH",
    "AggregationServer",
    "FederatedLearning",
    "FederatedResult",
    "InvalidUpdateError",
]
