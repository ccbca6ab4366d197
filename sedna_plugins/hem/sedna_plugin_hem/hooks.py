"""Hook implementations of this plugin (the module its entry point names).

Imports here stay light: the miners need only numpy, and are imported when the registry asks.
"""

from __future__ import annotations

from typing import Any

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_hard_example_miners() -> list[type[Any]]:
    from sedna_plugin_hem.boxes import IBTFilter, ThresholdFilter
    from sedna_plugin_hem.probability import (
        ConfidenceFilter,
        CrossEntropyFilter,
        EntropyFilter,
        MarginFilter,
    )
    from sedna_plugin_hem.routing import CloudOnlyFilter, EdgeOnlyFilter, RandomFilter

    return [
        ThresholdFilter,
        IBTFilter,
        CrossEntropyFilter,
        RandomFilter,
        CloudOnlyFilter,
        EdgeOnlyFilter,
        ConfidenceFilter,
        MarginFilter,
        EntropyFilter,
    ]
