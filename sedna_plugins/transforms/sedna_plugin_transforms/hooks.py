"""Hook implementations of this plugin (the module its entry point names).

Imports stay light: numpy here; ``dp_accounting`` only when a privacy transform accounts,
``cryptography`` only when a secure-aggregation round runs.
"""

from __future__ import annotations

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_update_transforms() -> list[type]:
    from sedna_plugin_transforms.compress import FP16, Int8, TopK
    from sedna_plugin_transforms.privacy import (
        DifferentialPrivacyClientSideAdaptiveClipping,
        DifferentialPrivacyClientSideFixedClipping,
        DifferentialPrivacyServerSideAdaptiveClipping,
        DifferentialPrivacyServerSideFixedClipping,
        LocalDP,
    )
    from sedna_plugin_transforms.secagg import SecAggPlus

    return [
        FP16,
        Int8,
        TopK,
        DifferentialPrivacyServerSideFixedClipping,
        DifferentialPrivacyClientSideFixedClipping,
        DifferentialPrivacyServerSideAdaptiveClipping,
        DifferentialPrivacyClientSideAdaptiveClipping,
        LocalDP,
        SecAggPlus,
    ]
