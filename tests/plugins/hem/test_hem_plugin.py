"""The plugin as users meet it: the conformance kit, registration and resolution by name."""

from __future__ import annotations

import pytest
import sedna_plugin_hem.hooks
from sedna_plugin_hem import (
    CloudOnlyFilter,
    ConfidenceFilter,
    CrossEntropyFilter,
    EdgeOnlyFilter,
    EntropyFilter,
    IBTFilter,
    MarginFilter,
    RandomFilter,
    ThresholdFilter,
)

from sedna_core.plugins import create_algorithm
from sedna_core.testing import check_algorithm, parametrize_with_checks

MINERS = [
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
SEDNA_NAMES = {"Threshold", "IBT", "CrossEntropy", "Random", "CloudOnly", "EdgeOnly"}


@parametrize_with_checks(MINERS)
def test_conformance(algorithm, check):
    check(algorithm)


def test_registered_names(sedna_pm):
    sedna_pm.register(sedna_plugin_hem.hooks, name="hem")
    table = sedna_pm.algorithms("hard_example_mining")
    assert {"Confidence", "Margin", "Entropy"} | SEDNA_NAMES <= set(table)
    for cls in MINERS:
        check_algorithm(cls, plugin_manager=sedna_pm)


def test_sedna_crd_parameters_convert(sedna_pm):
    sedna_pm.register(sedna_plugin_hem.hooks, name="hem")
    # HEM_PARAMETERS arrives as the CRD's key/value list of strings
    miner = create_algorithm(
        "hard_example_mining",
        {
            "method": "IBT",
            "param": [
                {"key": "threshold_img", "value": "0.9"},
                {"key": "threshold_box", "value": "0.8"},
            ],
        },
    )
    assert isinstance(miner, IBTFilter)
    assert (miner.threshold_img, miner.threshold_box) == (0.9, 0.8)
    random = create_algorithm(
        "hard_example_mining", {"method": "Random", "param": {"random_ratio": "0.3", "seed": "5"}}
    )
    assert random.random_ratio == 0.3 and random.seed == 5  # Sedna: TypeError on the string
    assert create_algorithm("hard_example_mining", "hem:CloudOnly")("x") is True


def test_misspelt_parameter_is_an_error(sedna_pm):
    sedna_pm.register(sedna_plugin_hem.hooks, name="hem")
    from sedna_core.errors import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="threshold"):
        create_algorithm("hard_example_mining", {"method": "Confidence", "param": {"thresold": 1}})


def test_hooks_module_is_light():
    import subprocess
    import sys

    code = (
        "import sys, sedna_plugin_hem.hooks as h; h.sedna_register_hard_example_miners(); "
        "bad = [m for m in ('torch', 'tensorflow', 'keras', 'xgboost', 'sklearn') "
        "if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
