"""Discovery: a status per plugin, one warning per failure, strict and disable switches."""

from __future__ import annotations

import sys

import pytest

from sedna_core.errors import ConfigError, PluginLoadError
from sedna_core.plugins import SednaPluginManager, resolve_algorithm

GOOD = """
import numpy as np
from sedna_core.algorithms import BaseHardExampleMiner
from sedna_core.plugins import hookimpl

class Everything(BaseHardExampleMiner):
    name = "Everything"

    def mine(self, results):
        return np.ones(len(results), dtype=bool)

@hookimpl
def sedna_register_hard_example_miners():
    return [Everything]
"""
OTHER = GOOD.replace('"Everything"', '"Other"')
RAISES = "raise RuntimeError('broken on purpose')\n"
MISSING_IMPORT = "import surely_not_a_module_xyz\n"
UNKNOWN_HOOK = """
from sedna_core.plugins import hookimpl

@hookimpl
def sedna_register_teleporters():
    return []
"""
BAD_ARGS = """
from sedna_core.plugins import hookimpl

@hookimpl
def sedna_job_started(job_kind, job_name, flux_capacitor):
    pass
"""


def statuses(pm: SednaPluginManager) -> dict[str, str]:
    return {i.name: i.status for i in pm.list_plugins()}


def test_statuses(make_plugin, capsys: pytest.CaptureFixture[str]) -> None:
    eps = [
        *make_plugin("sedna-plugin-good", GOOD),
        *make_plugin("sedna-plugin-raises", RAISES),
        *make_plugin("sedna-plugin-noimport", MISSING_IMPORT),
        *make_plugin("sedna-plugin-nodep", GOOD, requires=("surely-not-installed-xyz",)),
        *make_plugin("sedna-plugin-oldver", GOOD, requires=("numpy>=999",)),
        *make_plugin("sedna-plugin-extra", OTHER, requires=('surely-not-xyz; extra == "gpu"',)),
        *make_plugin("sedna-plugin-future", UNKNOWN_HOOK),
        *make_plugin("sedna-plugin-badargs", BAD_ARGS),
        *make_plugin("sedna-plugin-newcore", GOOD, requires=("sedna-core>=99",)),
    ]
    pm = SednaPluginManager(strict=False, disabled=())
    pm.load_entry_points(eps)
    assert statuses(pm) == {
        "sedna-plugin-good": "ok",
        "sedna-plugin-extra": "ok",  # requirements behind extras are ignored
        "sedna-plugin-raises": "error",
        "sedna-plugin-noimport": "unavailable",
        "sedna-plugin-nodep": "unavailable",
        "sedna-plugin-oldver": "unavailable",
        "sedna-plugin-future": "incompatible",
        "sedna-plugin-badargs": "incompatible",
        "sedna-plugin-newcore": "incompatible",
    }
    infos = {i.name: i for i in pm.list_plugins()}
    assert "broken on purpose" in (infos["sedna-plugin-raises"].error or "")
    assert "surely_not_a_module_xyz" in (infos["sedna-plugin-noimport"].error or "")
    assert "surely-not-installed-xyz" in (infos["sedna-plugin-nodep"].error or "")
    assert "numpy>=999" in (infos["sedna-plugin-oldver"].error or "")
    assert "sedna_register_teleporters" in (infos["sedna-plugin-future"].error or "")
    assert infos["sedna-plugin-future"].hooks == ["sedna_register_teleporters"]
    assert "sedna-core>=99" in (infos["sedna-plugin-newcore"].error or "")
    assert infos["sedna-plugin-good"].algorithms == {"hard_example_mining": ["Everything"]}
    assert infos["sedna-plugin-good"].hooks == ["sedna_register_hard_example_miners"]
    assert infos["sedna-plugin-good"].entry_point.startswith("good = sp_sedna_plugin_good_")
    # requirements are checked from metadata, before importing anything
    nodep_module = infos["sedna-plugin-nodep"].entry_point.split(" = ")[1]
    assert nodep_module not in sys.modules
    # one warning per failure
    out = capsys.readouterr()
    assert (out.err + out.out).count("plugin not loaded") == 7
    # the good plugin's algorithms resolve despite the broken ones
    assert resolve_algorithm("hard_example_mining", "Everything", plugin_manager=pm).name == (
        "Everything"
    )
    assert {i.name for i in pm.failed_plugins()} == set(statuses(pm)) - {
        "sedna-plugin-good",
        "sedna-plugin-extra",
    }


def test_two_good_plugins_with_the_same_name_conflict(make_plugin) -> None:
    eps = [*make_plugin("sedna-plugin-one", GOOD), *make_plugin("sedna-plugin-two", GOOD)]
    pm = SednaPluginManager(strict=False, disabled=())
    pm.load_entry_points(eps)
    assert set(pm.algorithms("hard_example_mining")) == {
        "sedna-plugin-one:Everything",
        "sedna-plugin-two:Everything",
    }
    assert resolve_algorithm("hard_example_mining", "two:Everything", plugin_manager=pm)


def test_strict_mode_raises(make_plugin, monkeypatch: pytest.MonkeyPatch) -> None:
    eps = make_plugin("sedna-plugin-raises", RAISES)
    monkeypatch.setenv("SEDNA_STRICT_PLUGINS", "1")
    with pytest.raises(PluginLoadError, match="broken on purpose") as err:
        SednaPluginManager().load_entry_points(eps)
    assert err.value.plugin == "sedna-plugin-raises"
    assert isinstance(err.value.__cause__, RuntimeError)
    eps = make_plugin("sedna-plugin-nodep", GOOD, requires=("surely-not-installed-xyz",))
    with pytest.raises(PluginLoadError, match="unavailable"):
        SednaPluginManager().load_entry_points(eps)
    monkeypatch.setenv("SEDNA_STRICT_PLUGINS", "perhaps")
    with pytest.raises(ConfigError, match="SEDNA_STRICT_PLUGINS"):
        SednaPluginManager().load_entry_points(eps)


def test_disable_by_distribution_or_entry_point_name(
    make_plugin, monkeypatch: pytest.MonkeyPatch
) -> None:
    eps = [
        *make_plugin("sedna-plugin-raises", RAISES),
        *make_plugin("sedna-plugin-good", GOOD),
        *make_plugin("sedna-plugin-other", OTHER),
    ]
    monkeypatch.setenv("SEDNA_STRICT_PLUGINS", "1")
    monkeypatch.setenv("SEDNA_DISABLE_PLUGINS", "sedna_plugin_raises, other")
    pm = SednaPluginManager()
    pm.load_entry_points(eps)  # strict, but the broken plugin is never imported
    assert statuses(pm) == {
        "sedna-plugin-raises": "disabled",
        "sedna-plugin-good": "ok",
        "sedna-plugin-other": "disabled",
    }
    assert pm.failed_plugins() == []
    assert list(pm.algorithms("hard_example_mining")) == ["Everything"]


def test_fresh_install_is_seen_without_a_cache(make_plugin, monkeypatch) -> None:
    monkeypatch.setenv("SEDNA_DISABLE_PLUGINS", "")
    first = SednaPluginManager(strict=False)
    first.load_entry_points()
    before = {i.name for i in first.list_plugins(with_algorithms=False)}
    make_plugin("sedna-plugin-justinstalled", GOOD)
    second = SednaPluginManager(strict=False)
    second.load_entry_points()
    after = {i.name: i.status for i in second.list_plugins(with_algorithms=False)}
    assert "sedna-plugin-justinstalled" not in before
    assert after["sedna-plugin-justinstalled"] == "ok"


def test_assertion_or_exit_on_import_does_not_stop_the_others(make_plugin) -> None:
    eps = [
        *make_plugin("sedna-plugin-asserts", "assert False, 'nope'\n"),
        *make_plugin("sedna-plugin-exits", "raise SystemExit(3)\n"),
        *make_plugin("sedna-plugin-good", GOOD),
    ]
    pm = SednaPluginManager(strict=False, disabled=())
    pm.load_entry_points(eps)
    assert statuses(pm) == {
        "sedna-plugin-asserts": "error",
        "sedna-plugin-exits": "error",
        "sedna-plugin-good": "ok",
    }
    assert "AssertionError: nope" in (pm.plugin_info("asserts").error or "")
