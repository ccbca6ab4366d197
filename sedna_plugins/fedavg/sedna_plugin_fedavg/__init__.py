"""FedAvg-family aggregation for sedna-core: FedAvg, FedProx, FedAvgM, FedAdam, FedYogi, FedAdagrad.

Each strategy folds client updates chunk by chunk into one model's worth of accumulators
(:class:`sedna_core.algorithms.StreamingAggregation`), so the server's memory does not grow
with the number of clients.
"""

from sedna_plugin_fedavg.fedavg import FedAvg, FedAvgM, FedProx
from sedna_plugin_fedavg.fedopt import FedAdagrad, FedAdam, FedYogi

__version__ = "0.1.0"
__all__ = ["FedAdagrad", "FedAdam", "FedAvg", "FedAvgM", "FedProx", "FedYogi"]
