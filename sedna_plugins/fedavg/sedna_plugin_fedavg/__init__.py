"""FedAvg-family aggregation for sedna-core: FedAvg, FedAvgM, FedAdam, FedYogi, FedAdagrad."""

__version__ = "0.1.0"
