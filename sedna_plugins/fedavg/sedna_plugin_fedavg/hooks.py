"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: the strategies need only numpy (and scipy's BLAS when present).
"""

from __future__ import annotations

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_aggregators() -> list[type]:
    from sedna_plugin_fedavg.fedavg import FedAvg, FedAvgM, FedProx
    from sedna_plugin_fedavg.fedopt import FedAdagrad, FedAdam, FedYogi

    return [FedAvg, FedProx, FedAvgM, FedAdam, FedYogi, FedAdagrad]
