"""Byzantine-robust aggregation for sedna-core: FedMedian, FedTrimmedAvg, Krum, MultiKrum.

These strategies need every update of a round at once
(:class:`sedna_core.algorithms.aggregation.AllAtOnceAggregation`); they read the updates a
block of coordinates at a time, so the server holds one block per client, not one model.
"""

from sedna_plugin_robust.coordinate import FedMedian, FedTrimmedAvg
from sedna_plugin_robust.krum import Krum, MultiKrum

__version__ = "0.1.0"
__all__ = ["FedMedian", "FedTrimmedAvg", "Krum", "MultiKrum"]
