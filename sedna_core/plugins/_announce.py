"""Lifecycle hooks: jobs announce events, plugins observe them, a failing plugin never hurts."""

from __future__ import annotations

from typing import Any

from sedna_core.errors import PluginError
from sedna_core.log import get_logger
from sedna_core.plugins._manager import SednaPluginManager, get_plugin_manager

__all__ = ["announce"]


def _log() -> Any:
    # looked up per call: sedna_core.log's loggers bind the structlog configuration current
    # when they are created, and configure_logging() may run after this module is imported
    return get_logger(__name__)


def announce(
    hook_name: str, *, plugin_manager: SednaPluginManager | None = None, **kwargs: Any
) -> None:
    """Call the lifecycle hook ``hook_name`` on every plugin implementing it.

    Each implementation is called on its own; one that raises is logged (with the plugin and
    the hook) and the others still run. Calling a hook that does not exist, or with arguments
    its specification does not have, is a bug of the caller and raises
    :class:`~sedna_core.errors.PluginError`.

    Example: ``announce("sedna_job_started", job_kind="jointinference", job_name="ji",
    info={})``.
    """
    pm = plugin_manager if plugin_manager is not None else get_plugin_manager()
    caller = getattr(pm.hook, hook_name, None)
    if caller is None or not caller.has_spec() or hook_name.startswith("sedna_register_"):
        raise PluginError(f"{hook_name!r} is not a sedna lifecycle hook", hook=hook_name)
    spec_args = set(caller.spec.argnames) if caller.spec is not None else set()
    if set(kwargs) != spec_args:
        raise PluginError(
            f"{hook_name} takes {sorted(spec_args)}, got {sorted(kwargs)}", hook=hook_name
        )
    # pluggy's order (last registered first), but one call per plugin
    for impl in reversed(caller.get_hookimpls()):
        if impl.wrapper or impl.hookwrapper:
            continue
        try:
            impl.function(*(kwargs[a] for a in impl.argnames))
        except Exception as exc:
            _log().warning(
                "plugin hook raised",
                plugin=impl.plugin_name,
                hook=hook_name,
                error=f"{type(exc).__name__}: {exc}",
                exc_info=exc,
            )
