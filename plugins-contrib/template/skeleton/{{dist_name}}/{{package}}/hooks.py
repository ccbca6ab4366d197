"""Hook implementations: the module this distribution's ``sedna.plugins`` entry point names.

``sedna plugins list`` imports it and calls its hooks, so it stays light: the algorithm module
is imported only when the registry asks for the kind.
"""

from __future__ import annotations

from typing import Any

from sedna_core.plugins import hookimpl


@hookimpl
def {{ hook }}() -> list[type[Any]]:
    from {{ package }} import {{ module }}

    return [{{ module }}.{{ class_name }}]
