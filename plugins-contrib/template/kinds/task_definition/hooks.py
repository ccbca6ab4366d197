"""Hook implementations: the module this distribution's ``sedna.plugins`` entry point names.

``sedna plugins list`` imports it and calls its hooks, so it stays light: the algorithm module
is imported only when the registry asks for the kind. The definition's allocator is registered
too, because the knowledge base restores it by name.
"""

from __future__ import annotations

from typing import Any

from sedna_core.plugins import hookimpl


@hookimpl
def sedna_register_task_definitions() -> list[type[Any]]:
    from {{ package }} import {{ module }}

    return [{{ module }}.{{ class_name }}]


@hookimpl
def sedna_register_task_allocators() -> list[type[Any]]:
    from {{ package }} import {{ module }}

    return [{{ module }}.{{ class_name }}Allocator]
