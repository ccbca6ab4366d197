"""Update transforms for sedna-core's federated learning (kind ``update_transform``).

Compression: :class:`FP16`, :class:`Int8` (stochastic rounding), :class:`TopK` (error
feedback). Differential privacy: Flower's four central variants
(:class:`DifferentialPrivacyServerSideFixedClipping`, ...ClientSideFixedClipping,
...ServerSideAdaptiveClipping, ...ClientSideAdaptiveClipping) and :class:`LocalDP`, with an RDP
accountant from ``dp-accounting``.
"""

from sedna_plugin_transforms.compress import FP16, Int8, TopK
from sedna_plugin_transforms.privacy import (
    DifferentialPrivacyClientSideAdaptiveClipping,
    DifferentialPrivacyClientSideFixedClipping,
    DifferentialPrivacyServerSideAdaptiveClipping,
    DifferentialPrivacyServerSideFixedClipping,
    LocalDP,
    epsilon_of,
)

__all__ = [
    "FP16",
    "DifferentialPrivacyClientSideAdaptiveClipping",
    "DifferentialPrivacyClientSideFixedClipping",
    "DifferentialPrivacyServerSideAdaptiveClipping",
    "DifferentialPrivacyServerSideFixedClipping",
    "Int8",
    "LocalDP",
    "TopK",
    "epsilon_of",
]
