"""Sedna's trigger/deploy condition syntax."""

from __future__ import annotations

import pytest

from sedna_core.errors import ConfigError
from sedna_core.jobs.incremental import parse_condition


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("num_of_samples > 500", {"num_of_samples": 501}, True),
        ("num_of_samples > 500", {"num_of_samples": 500}, False),
        ("num_of_samples >= 500", {"num_of_samples": 500}, True),
        ("precision_delta > 0.1", {"precision_delta": 0.11}, True),
        ("precision_delta > 0.1", {"precision_delta": 0.1}, False),
        ("loss_delta < -1e-3", {"loss_delta": -0.01}, True),
        ("accuracy == 1", {"accuracy": 1.0}, True),
        ("accuracy != 1", {"accuracy": 1.0}, False),
        ("a > 1 and b > 1", {"a": 2, "b": 0}, False),
        ("a > 1 AND b > 1 or c > 1", {"a": 0, "b": 0, "c": 2}, True),
        ("a > 1 or b > 1 and c > 1", {"a": 0, "b": 2, "c": 0}, False),
        ("a > 0", {"a": float("nan")}, False),
    ],
)
def test_il_condition_evaluates(text: str, values: dict[str, float], expected: bool) -> None:
    assert parse_condition(text).evaluate(values) is expected


def test_il_condition_crd_mapping_and_names() -> None:
    cond = parse_condition({"metric": "num_of_samples", "operator": ">", "threshold": 500})
    assert cond.evaluate({"num_of_samples": 600})
    assert cond.names == ("num_of_samples",)
    assert parse_condition(cond) is cond
    assert parse_condition("x>1 and y<=2 or x>3").names == ("x", "y")


@pytest.mark.parametrize("bad", ["", "num_of_samples >", "> 5", "a >> 1", "a > b", "a > 1 and", 5])
def test_il_condition_rejects_malformed(bad: object) -> None:
    with pytest.raises(ConfigError, match="expected comparisons"):
        parse_condition(bad)  # type: ignore[arg-type]


def test_il_condition_unknown_name_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="num_of_samples"):
        parse_condition("num_of_sampels > 5").evaluate({"num_of_samples": 10})
