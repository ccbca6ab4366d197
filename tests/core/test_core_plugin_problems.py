"""Problems visible at listing time, "did you mean" with conflicts, and `sedna plugins show`."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import numpy as np
import pytest

from sedna_core.algorithms import AllAtOnceAggregation, BaseHardExampleMiner
from sedna_core.cli.main import main
from sedna_core.cli.plugins import show_document
from sedna_core.errors import PluginLoadError, UnknownAlgorithmError
from sedna_core.plugins import SednaPluginManager, create_algorithm, hookimpl, resolve_algorithm
from sedna_core.plugins._manager import _swap_plugin_manager

GEO = """
import numpy as np
from sedna_core.algorithms import AllAtOnceAggregation
from sedna_core.plugins import hookimpl

class GeoMedian(AllAtOnceAggregation):
    name = "GeoMedian"

    def combine(self, global_weights, specs, updates):
        return [np.zeros(s.shape) for s in specs]

@hookimpl
def sedna_register_aggregators():
    return [GeoMedian]
"""
TYPO = """
from sedna_core.plugins import hookimpl

@hookimpl
def sedna_register_hard_example_miner():
    return []
"""
UNMARKED = """
def sedna_register_backends():
    return []
"""


class Median(AllAtOnceAggregation):
    """The coordinate median.

    Parameters
    ----------
    trim
        Unused; shows in ``sedna plugins show``.
    """

    name: ClassVar[str] = "Median"

    def __init__(self, trim: float = 0.1) -> None:
        super().__init__()
        self.trim = trim

    def combine(self, global_weights: Any, specs: Any, updates: Any) -> list[np.ndarray]:
        return [np.zeros(s.shape) for s in specs]


class Never(BaseHardExampleMiner):
    name: ClassVar[str] = "Never"

    def mine(self, results: Any) -> np.ndarray:
        return np.zeros(len(results), dtype=bool)


class Hooks:
    def __init__(self, *classes: type) -> None:
        self.classes = classes

    @hookimpl
    def sedna_register_aggregators(self) -> list[type]:
        return [c for c in self.classes if c.kind == "aggregation"]

    @hookimpl
    def sedna_register_hard_example_miners(self) -> list[type]:
        return [c for c in self.classes if c.kind == "hard_example_mining"]


def test_a_conflict_is_a_problem_of_both_plugins(make_plugin) -> None:
    eps = [*make_plugin("sedna-plugin-geo-a", GEO), *make_plugin("sedna-plugin-geo-b", GEO)]
    pm = SednaPluginManager(strict=False, disabled=())
    pm.load_entry_points(eps)
    infos = {i.name: i for i in pm.list_plugins()}
    for me, other in (("a", "b"), ("b", "a")):
        (problem,) = infos[f"sedna-plugin-geo-{me}"].problems
        assert f"also registered by sedna-plugin-geo-{other}" in problem
        assert "'sedna-plugin-geo-a:GeoMedian' or 'sedna-plugin-geo-b:GeoMedian'" in problem
        assert f"SEDNA_DISABLE_PLUGINS=sedna-plugin-geo-{other}" in problem
    pm.refresh()  # tables rebuilt: the problem is not repeated
    assert len({i.name: i for i in pm.list_plugins()}["sedna-plugin-geo-a"].problems) == 1

    with pytest.raises(UnknownAlgorithmError) as info:
        resolve_algorithm("aggregation", "GeoMedain", plugin_manager=pm)
    assert info.value.suggestion == "GeoMedian"
    assert "Did you mean 'GeoMedian'? It is registered by several plugins" in str(info.value)

    calm = SednaPluginManager(strict=False, disabled=("geo-b",))
    calm.load_entry_points(eps)
    assert not {i.name: i for i in calm.list_plugins()}["sedna-plugin-geo-a"].problems


def test_a_misspelt_hook_says_which_it_meant(make_plugin) -> None:
    eps = [*make_plugin("sedna-plugin-typo", TYPO), *make_plugin("sedna-plugin-plain", UNMARKED)]
    pm = SednaPluginManager(strict=False, disabled=())
    pm.load_entry_points(eps)
    infos = {i.name: i for i in pm.list_plugins()}
    typo = infos["sedna-plugin-typo"]
    assert typo.status == "error"
    assert "`sedna_register_hard_example_miner`: did you mean" in (typo.error or "")
    assert "`sedna_register_hard_example_miners`?" in (typo.error or "")
    plain = infos["sedna-plugin-plain"]
    assert plain.status == "ok"
    assert plain.problems == [
        "`sedna_register_backends` is not marked with @hookimpl, so it is never called; "
        "decorate it with `sedna_core.plugins.hookimpl`"
    ]

    class ByHand:
        @hookimpl
        def sedna_job_start(self) -> None:  # sedna_job_started
            pass

    with pytest.raises(PluginLoadError, match="did you mean `sedna_job_started`"):
        SednaPluginManager().register(ByHand(), name="by-hand")


def test_unavailable_carries_the_pip_command(make_plugin) -> None:
    eps = make_plugin("sedna-plugin-needy", GEO, requires=("surely-absent-xyz>=2", "numpy>=1"))
    pm = SednaPluginManager(strict=False, disabled=())
    pm.load_entry_points(eps)
    (info,) = pm.list_plugins()
    assert info.status == "unavailable"
    assert info.missing == ["surely-absent-xyz>=2"]
    assert (info.error or "").endswith("install with: pip install 'surely-absent-xyz>=2'")
    assert info.requirements == ["surely-absent-xyz>=2", "numpy>=1"]
    assert set(info.to_dict()) == {
        "name", "version", "entry_point", "status", "error", "algorithms", "hooks", "problems",
    }  # fmt: skip


def test_registered_by_hand_qualifies_by_name_and_entry_point(sedna_pm) -> None:
    sedna_pm.register(Hooks(Median), name="sedna-plugin-median", entry_point="median")
    for spec in ("sedna-plugin-median:Median", "median:Median", "Median"):
        assert type(create_algorithm("aggregation", spec)) is Median


def test_show_document_for_plugins_and_algorithms() -> None:
    pm = SednaPluginManager()
    pm.register(Hooks(Median, Never), name="sedna-plugin-x", entry_point="x")
    pm.register(Hooks(type("OtherMedian", (Median,), {})), name="sedna-plugin-y")  # same name
    by_plugin = show_document(pm, "x")
    (plugin,) = by_plugin["plugins"]
    assert plugin["name"] == "sedna-plugin-x" and plugin["requirements"] == []
    assert [(a["kind"], a["name"]) for a in plugin["algorithms_detail"]] == [
        ("aggregation", "Median"),
        ("hard_example_mining", "Never"),
    ]
    median = plugin["algorithms_detail"][0]
    assert median["spec"] == "sedna-plugin-x:Median"  # y registers it too
    assert median["description"] == "The coordinate median."
    assert median["parameters"] == [
        {
            "name": "trim",
            "type": "float",
            "default": "0.1",
            "required": False,
            "description": "Unused; shows in ``sedna plugins show``",
        }
    ]
    by_name = show_document(pm, "median")
    assert [p["name"] for p in by_name["plugins"]] == ["sedna-plugin-x", "sedna-plugin-y"]
    qualified = show_document(pm, "sedna-plugin-y:Median")
    assert [p["name"] for p in qualified["plugins"]] == ["sedna-plugin-y"]
    assert show_document(pm, "Never", kind="aggregation")["plugins"] == []
    assert show_document(pm, "nothing")["plugins"] == []


@pytest.fixture
def listed_pm(monkeypatch: pytest.MonkeyPatch) -> Any:
    import sedna_core.log

    monkeypatch.setattr(sedna_core.log, "configure_logging", lambda *a, **k: None)
    pm = SednaPluginManager()
    pm.register(Hooks(Median, Never), name="sedna-plugin-x", entry_point="x")
    previous = _swap_plugin_manager(pm)
    yield pm
    _swap_plugin_manager(previous)


def test_cli_list_kind_and_show(listed_pm: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "list", "--kind", "aggregation", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["algorithms"] == {"aggregation": ["Median"]}
    assert main(["plugins", "list", "--kind", "task_definition"]) == 0
    assert "no sedna plugins registering task_definition" in capsys.readouterr().out
    assert main(["plugins", "show", "Median"]) == 0
    out = capsys.readouterr().out
    assert "aggregation: Median" in out and "trim: float = 0.1" in out
    assert main(["plugins", "show", "Medain"]) == 1
    assert "did you mean 'Median'?" in capsys.readouterr().err
    assert main(["plugins", "show", "x", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["plugins"][0]["name"] == "sedna-plugin-x"
