"""Hard-example miners for sedna-core: Threshold, IBT, CrossEntropy, Random, CloudOnly, EdgeOnly,
Confidence, Margin, Entropy.

Use them by name through a job (``hard_example_mining={"method": "IBT", "param": {...}}``) or
directly::

    from sedna_plugin_hem import ConfidenceFilter
    ConfidenceFilter(threshold=0.9)([0.7, 0.2, 0.1])        # True: hard
    ConfidenceFilter(threshold=0.9).mine(probabilities)      # one decision per row
"""

from sedna_plugin_hem.boxes import IBTFilter, ThresholdFilter
from sedna_plugin_hem.probability import (
    ConfidenceFilter,
    CrossEntropyFilter,
    EntropyFilter,
    MarginFilter,
)
from sedna_plugin_hem.routing import CloudOnlyFilter, EdgeOnlyFilter, RandomFilter

__version__ = "0.1.0"

__all__ = [
    "CloudOnlyFilter",
    "ConfidenceFilter",
    "CrossEntropyFilter",
    "EdgeOnlyFilter",
    "EntropyFilter",
    "IBTFilter",
    "MarginFilter",
    "RandomFilter",
    "ThresholdFilter",
    "__version__",
]
