"""pytest plugin of sedna-core (entry point ``pytest11``): fixtures for plugin authors.

Loaded by every pytest run in an environment where sedna-core is installed, so it imports
nothing heavy at module level.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sedna_core.plugins import SednaPluginManager


@pytest.fixture
def sedna_pm() -> Iterator[SednaPluginManager]:
    """A fresh plugin manager without entry-point discovery.

    Register plugin objects (modules or instances with ``@hookimpl`` functions) on it::

        def test_my_miner(sedna_pm):
            sedna_pm.register(my_plugin.hooks)
            miner = create_algorithm("hard_example_mining", "MyMiner", plugin_manager=sedna_pm)

    Register with ``name=`` (your distribution's name) and ``entry_point=`` (your entry point's
    name) so that ``"dist:Name"`` and ``"entry:Name"`` qualify your algorithms as they do once
    the plugin is installed::

        sedna_pm.register(my_plugin.hooks, name="sedna-plugin-margin", entry_point="margin")
        create_algorithm("hard_example_mining", "sedna-plugin-margin:MyMiner")

    For the duration of the test it is also the process-wide manager, so code that calls
    :func:`~sedna_core.plugins.get_plugin_manager` (jobs, :func:`create_algorithm` without
    ``plugin_manager=``) sees it; the previous one is restored afterwards.
    """
    from sedna_core.plugins import SednaPluginManager
    from sedna_core.plugins._manager import _swap_plugin_manager

    pm = SednaPluginManager()
    previous = _swap_plugin_manager(pm)
    try:
        yield pm
    finally:
        _swap_plugin_manager(previous)
