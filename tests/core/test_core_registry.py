"""Name resolution, parameter conversion and error messages of the algorithm registry."""

from __future__ import annotations

import enum
from typing import Literal

import numpy as np
import pytest

from sedna_core.algorithms import BaseAggregation, BaseHardExampleMiner
from sedna_core.errors import (
    AlgorithmConflictError,
    AlgorithmUnavailableError,
    InvalidParameterError,
    PluginError,
    PluginLoadError,
    UnknownAlgorithmError,
)
from sedna_core.plugins import (
    SednaPluginManager,
    announce,
    create_algorithm,
    get_plugin_manager,
    hookimpl,
    resolve_algorithm,
)

HEM = "hard_example_mining"


class Mode(enum.Enum):
    FAST = "fast"
    SLOW = "slow"


class Threshold(BaseHardExampleMiner):
    name = "Threshold"

    def __init__(self, threshold: float = 0.5, top_k: int | None = None) -> None:
        self.threshold = threshold
        self.top_k = top_k

    def mine(self, results):
        return np.asarray(results, dtype=float).max(axis=-1) < self.threshold


class Typed(BaseHardExampleMiner):
    name = "Typed"

    def __init__(
        self,
        flag: bool = False,
        sizes: list[int] = (),  # type: ignore[assignment]
        pair: tuple[float, float] = (0.0, 1.0),
        how: Literal["a", "b"] = "a",
        mode: Mode = Mode.FAST,
        table: dict[str, float] | None = None,
        label: str = "x",
    ) -> None:
        self.flag = flag
        self.sizes = sizes
        self.pair = pair
        self.how = how
        self.mode = mode
        self.table = table
        self.label = label

    def mine(self, results):
        return np.zeros(len(results), dtype=bool)


class Needs(BaseHardExampleMiner):
    name = "Needs"

    def __init__(self, alpha: float) -> None:
        if alpha < 0:
            raise ValueError("alpha must be >= 0")
        self.alpha = alpha

    def mine(self, results):
        return np.zeros(len(results), dtype=bool)


class OtherThreshold(Threshold):
    name = "Threshold"


class PluginA:
    @hookimpl
    def sedna_register_hard_example_miners(self):
        return [Threshold, Typed, Needs]


class PluginB:
    @hookimpl
    def sedna_register_hard_example_miners(self):
        return [OtherThreshold]


@pytest.fixture
def pm(sedna_pm: SednaPluginManager) -> SednaPluginManager:
    sedna_pm.register(PluginA(), name="sedna-plugin-a")
    return sedna_pm


def test_fixture_is_the_process_wide_manager(sedna_pm: SednaPluginManager) -> None:
    assert get_plugin_manager() is sedna_pm
    assert sedna_pm.algorithms(HEM) == {}


@pytest.mark.parametrize(
    "spec",
    [
        "Threshold",
        " threshold ",  # unique case-insensitive match
        {"method": "Threshold", "param": {"threshold": "0.8"}},
        {"method": "Threshold", "param": '{"threshold": 0.8}'},
        {"method": "Threshold", "param": [{"key": "threshold", "value": "0.8"}]},
        '{"method": "Threshold", "param": {"threshold": "0.8"}}',
        "sedna-plugin-a:Threshold",
        {"method": Threshold, "param": {"threshold": 0.8}},
        Threshold,
    ],
)
def test_create_algorithm_accepts_sednas_forms(pm: SednaPluginManager, spec: object) -> None:
    algo = create_algorithm(HEM, spec, plugin_manager=pm)  # type: ignore[arg-type]
    assert type(algo) is Threshold
    assert algo.threshold in (0.5, 0.8)
    assert isinstance(algo.threshold, float)


def test_instance_is_returned_as_is(pm: SednaPluginManager) -> None:
    miner = Threshold(0.3)
    assert create_algorithm(HEM, miner, plugin_manager=pm) is miner
    with pytest.raises(InvalidParameterError, match="not a aggregation"):
        create_algorithm("aggregation", miner, plugin_manager=pm)


def test_default_manager_is_used(pm: SednaPluginManager) -> None:
    assert resolve_algorithm(HEM, "Threshold") is Threshold


def test_string_parameters_are_converted_by_annotation(pm: SednaPluginManager) -> None:
    algo = create_algorithm(
        HEM,
        {
            "method": "Typed",
            "param": {
                "flag": "yes",
                "sizes": "1, 2,3",
                "pair": "[0.25, 2]",
                "how": "b",
                "mode": "slow",
                "table": '{"x": "1.5"}',
                "label": "007",
            },
        },
        plugin_manager=pm,
    )
    assert algo.flag is True
    assert algo.sizes == [1, 2, 3]
    assert algo.pair == (0.25, 2.0)
    assert algo.how == "b"
    assert algo.mode is Mode.SLOW
    assert algo.table == {"x": 1.5}
    assert algo.label == "007"
    optional = create_algorithm(
        HEM, {"method": "Threshold", "param": {"top_k": "none"}}, plugin_manager=pm
    )
    assert optional.top_k is None
    optional = create_algorithm(
        HEM, {"method": "Threshold", "param": {"top_k": "3"}}, plugin_manager=pm
    )
    assert optional.top_k == 3


@pytest.mark.parametrize(
    ("param", "match"),
    [
        ({"treshold": "0.5"}, r"no parameter\(s\) treshold.*accepts: threshold: float = 0.5"),
        ({"threshold": "high"}, r"threshold='high' is not float"),
        ({"threshold": [1]}, r"threshold=\[1\] is not float"),
        ({"top_k": "1.5"}, r"top_k='1.5' is not"),
    ],
)
def test_bad_parameters_say_which(pm: SednaPluginManager, param: dict, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        create_algorithm(HEM, {"method": "Threshold", "param": param}, plugin_manager=pm)


def test_missing_and_rejected_parameters(pm: SednaPluginManager) -> None:
    with pytest.raises(InvalidParameterError, match=r"needs parameter\(s\) alpha"):
        create_algorithm(HEM, "Needs", plugin_manager=pm)
    with pytest.raises(InvalidParameterError, match="alpha must be >= 0") as err:
        create_algorithm(HEM, {"method": "Needs", "param": {"alpha": "-1"}}, plugin_manager=pm)
    assert err.value.plugin == "sedna-plugin-a"
    with pytest.raises(InvalidParameterError, match="expected true/false"):
        create_algorithm(HEM, {"method": "Typed", "param": {"flag": "maybe"}}, plugin_manager=pm)
    with pytest.raises(InvalidParameterError, match="expected one of 'a', 'b'"):
        create_algorithm(HEM, {"method": "Typed", "param": {"how": "c"}}, plugin_manager=pm)


@pytest.mark.parametrize(
    "spec",
    [
        {"param": {}},
        {"method": "Threshold", "parm": {}},
        {"method": "Threshold", "param": "{not json"},
        {"method": "Threshold", "param": [{"k": 1}]},
        "{broken json",
        42,
    ],
)
def test_malformed_specs(pm: SednaPluginManager, spec: object) -> None:
    with pytest.raises(InvalidParameterError):
        create_algorithm(HEM, spec, plugin_manager=pm)  # type: ignore[arg-type]


def test_unknown_name_lists_available_and_suggests(pm: SednaPluginManager) -> None:
    with pytest.raises(UnknownAlgorithmError) as err:
        resolve_algorithm(HEM, "Treshold", plugin_manager=pm)
    assert err.value.suggestion == "Threshold"
    assert err.value.available == ["Needs", "Threshold", "Typed"]
    assert "Did you mean 'Threshold'?" in str(err.value)
    assert isinstance(err.value, LookupError)


def test_unknown_kind(pm: SednaPluginManager) -> None:
    with pytest.raises(PluginError, match="unknown algorithm kind 'hem'"):
        resolve_algorithm("hem", "IBT", plugin_manager=pm)


def test_conflict_names_both_and_qualification_picks(pm: SednaPluginManager) -> None:
    pm.register(PluginB(), name="sedna-plugin-b")
    with pytest.raises(AlgorithmConflictError) as err:
        resolve_algorithm(HEM, "Threshold", plugin_manager=pm)
    assert sorted(err.value.plugins) == ["sedna-plugin-a", "sedna-plugin-b"]
    assert "'sedna-plugin-a:Threshold'" in str(err.value)
    assert resolve_algorithm(HEM, "sedna-plugin-b:Threshold", plugin_manager=pm) is OtherThreshold
    assert resolve_algorithm(HEM, "sedna_plugin_a:Threshold", plugin_manager=pm) is Threshold
    names = pm.algorithms(HEM)
    assert "Threshold" not in names
    assert names["sedna-plugin-b:Threshold"] is OtherThreshold
    with pytest.raises(UnknownAlgorithmError, match="no plugin named 'nope'"):
        resolve_algorithm(HEM, "nope:Threshold", plugin_manager=pm)


def test_same_class_from_two_plugins_is_no_conflict(pm: SednaPluginManager) -> None:
    class Again:
        @hookimpl
        def sedna_register_hard_example_miners(self):
            return Threshold  # a single class is accepted too

    pm.register(Again(), name="again")
    assert resolve_algorithm(HEM, "Threshold", plugin_manager=pm) is Threshold


def test_bad_registrations_are_reported_against_their_plugin(
    pm: SednaPluginManager, caplog: pytest.LogCaptureFixture
) -> None:
    class Nameless(BaseHardExampleMiner):
        def mine(self, results):
            return np.zeros(len(results), dtype=bool)

    class Abstract(BaseAggregation):
        name = "Abstract"

    class Bad:
        @hookimpl
        def sedna_register_hard_example_miners(self):
            return [Nameless, dict]

        @hookimpl
        def sedna_register_aggregators(self):
            return [Abstract]

    class Raising:
        @hookimpl
        def sedna_register_hard_example_miners(self):
            raise RuntimeError("boom")

    pm.register(Bad(), name="bad")
    pm.register(Raising(), name="raising")
    assert set(pm.algorithms(HEM)) == {"Threshold", "Typed", "Needs"}
    assert pm.algorithms("aggregation") == {}
    bad = pm.plugin_info("bad")
    assert bad is not None and bad.status == "ok"
    assert any("has no `name`" in p for p in bad.problems)
    assert any("not a subclass of BaseHardExampleMiner" in p for p in bad.problems)
    assert any("abstract" in p for p in bad.problems)
    raising = pm.plugin_info("raising")
    assert raising is not None and raising.status == "error"
    assert "boom" in (raising.error or "")


def test_strict_mode_raises_on_bad_registration(
    pm: SednaPluginManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Raising:
        @hookimpl
        def sedna_register_hard_example_miners(self):
            raise RuntimeError("boom")

    monkeypatch.setenv("SEDNA_STRICT_PLUGINS", "1")
    pm.register(Raising(), name="raising")
    with pytest.raises(PluginLoadError, match="boom") as err:
        pm.algorithms(HEM)
    assert err.value.plugin == "raising"


def test_register_rejects_unknown_hooks(sedna_pm: SednaPluginManager) -> None:
    class Future:
        @hookimpl
        def sedna_register_quantum_miners(self):
            return []

    class WrongArgs:
        @hookimpl
        def sedna_job_started(self, job_kind, not_an_arg):
            pass

    with pytest.raises(PluginLoadError, match="sedna_register_quantum_miners"):
        sedna_pm.register(Future(), name="future")
    with pytest.raises(PluginLoadError, match="not_an_arg"):
        sedna_pm.register(WrongArgs(), name="wrong")
    assert sedna_pm.list_plugins() == []


def test_unregister_forgets_algorithms(pm: SednaPluginManager) -> None:
    assert "Threshold" in pm.algorithms(HEM)
    pm.unregister(name="sedna-plugin-a")
    assert pm.algorithms(HEM) == {}
    assert pm.plugin_info("sedna-plugin-a") is None


def test_provider_of(pm: SednaPluginManager) -> None:
    assert pm.provider_of(Threshold) == "sedna-plugin-a"
    assert pm.provider_of(OtherThreshold) is None


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    @hookimpl
    def sedna_round_aggregated(self, job_name, round_number):  # fewer args than the spec
        self.calls.append((job_name, round_number))


class Broken:
    @hookimpl
    def sedna_round_aggregated(self, job_name):
        raise RuntimeError("observer failed")


def test_announce_logs_plugin_errors_and_calls_the_others(
    sedna_pm: SednaPluginManager, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = Recorder()
    sedna_pm.register(rec, name="recorder")
    sedna_pm.register(Broken(), name="broken")
    announce(
        "sedna_round_aggregated",
        plugin_manager=sedna_pm,
        job_name="fl",
        round_number=3,
        num_clients=2,
        metrics={},
    )
    assert rec.calls == [("fl", 3)]
    err = capsys.readouterr()
    logged = err.err + err.out
    assert "observer failed" in logged and "broken" in logged


def test_announce_rejects_misuse(sedna_pm: SednaPluginManager) -> None:
    with pytest.raises(PluginError, match="not a sedna lifecycle hook"):
        announce("sedna_job_exploded", plugin_manager=sedna_pm)
    with pytest.raises(PluginError, match="takes"):
        announce("sedna_model_deployed", plugin_manager=sedna_pm, job_name="x")


def test_unavailable_plugin_is_named(sedna_pm: SednaPluginManager, make_plugin) -> None:
    eps = make_plugin(
        "sedna-plugin-fancy",
        "from sedna_core.plugins import hookimpl\n",
        requires=("surely-not-installed-package-xyz>=1",),
    )
    sedna_pm.load_entry_points(eps)
    with pytest.raises(AlgorithmUnavailableError, match="surely-not-installed") as err:
        resolve_algorithm("backend", "fancy", plugin_manager=sedna_pm)
    assert err.value.plugin == "sedna-plugin-fancy"
    with pytest.raises(AlgorithmUnavailableError):
        resolve_algorithm(HEM, "sedna-plugin-fancy:Anything", plugin_manager=sedna_pm)
    with pytest.raises(UnknownAlgorithmError, match="sedna-plugin-fancy \\(unavailable"):
        resolve_algorithm(HEM, "IBT", plugin_manager=sedna_pm)
