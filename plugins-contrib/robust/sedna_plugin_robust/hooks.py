"""Hook implementations of this plugin (the module its entry point names)."""

from __future__ import annotations

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_aggregators() -> list[type]:
    from sedna_plugin_robust.coordinate import FedMedian, FedTrimmedAvg
    from sedna_plugin_robust.krum import Krum, MultiKrum

    return [FedMedian, FedTrimmedAvg, Krum, MultiKrum]
