"""Update transforms for sedna-core's federated learning (kind ``update_transform``).

Compression: :class:`FP16`, :class:`Int8` (stochastic rounding), :class:`TopK` (error
feedback). Differential privacy: Flower's four central variants
(:class:`DifferentialPrivacyServerSideFixedClipping`, ...ClientSideFixedClipping,
...ServerSideAdaptiveClipping, ...ClientSideAdaptiveClipping) and :class:`LocalDP`, with an RDP
accountant from ``dp-accounting``. Secure aggregation: :class:`SecAggPlus` (Bell et al. 2020,
Flower's parameters), with primitives from ``cryptography``.
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
from sedna_plugin_transforms.secagg import SecAggPlus

__all__ = [
    "FP16",
    "DifferentialPrivacyClientSideAdaptiveClipping",
    "DifferentialPrivacyClientSideFixedClipping",
    "DifferentialPrivacyServerSideAdaptiveClipping",
    "DifferentialPrivacyServerSideFixedClipping",
    "Int8",
    "LocalDP",
    "SecAggPlus",
    "TopK",
    "epsilon_of",
]
