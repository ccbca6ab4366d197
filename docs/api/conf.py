"""Sphinx configuration of the API reference (``make apidocs``; checked by tests/core).

Sphinx autodoc because the docstrings are written for it: numpydoc sections (read by napoleon)
and Sphinx cross-reference roles (``:class:``, ``:meth:``, ``:func:``); nitpicky mode then
fails the build on any reference to a name of sedna-core that does not resolve. Names from
other projects are not checked: intersphinx would need their inventories from the network.
"""

from __future__ import annotations

import importlib
from typing import Any

project = "sedna-core"
author = "sedna-core developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_inherit_docstrings = True
# `from __future__ import annotations` keeps annotations as written: short names resolve
# against the module being documented
autodoc_type_aliases: dict[str, str] = {}
html_theme = "alabaster"
exclude_patterns = ["_build"]
nitpicky = True

#: references outside sedna-core (no inventories offline), and annotation spellings that
#: name standard or third-party types
_EXTERNAL = (
    r"(abc|np|numpy|pluggy|aiohttp|stevedore|packaging|attrs|structlog|sqlalchemy|fsspec"
    r"|collections|collections\.abc|typing|os|pathlib|contextlib|threading|asyncio"
    r"|concurrent|datetime|enum|importlib|json|io|types|dataclasses)(\..*)?"
)
_BUILTIN = (
    r"Any|Self|ClassVar|Callable|Iterable|Iterator|Mapping|MutableMapping|Sequence|Hashable"
    r"|Awaitable|AsyncIterator|Coroutine|Literal|Protocol|TypeVar|Path|PathLike|None|NoneType"
    r"|int|float|str|bytes|bool|dict|list|tuple|set|frozenset|object|type|callable|optional"
    r"|Exception|ValueError|TypeError|KeyError|RuntimeError|AssertionError|ModuleNotFoundError"
    r"|BaseException|array|ndarray|dtype|function|module|mapping|sequence|iterable|generator"
    r"|TimeoutError|OSError|ConnectionError|CancelledError|Event|Lock|Thread"
)
nitpick_ignore_regex = [
    (r"py:.*", rf"({_EXTERNAL}|{_BUILTIN})"),
    # napoleon reads "words: more words" and "dict[str, int]" as types: not names
    (r"py:.*", r".*[ \[\]].*"),
    # private modules and classes (``_base.JobBase``) are not part of the reference
    (r"py:.*", r"sedna_core\.(.*\.)?_\w+(\..*)?"),
]


def _resolve_short_names(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """Resolve what Python resolves but Sphinx does not, else leave the reference broken.

    * a re-exported name (``sedna_core.algorithms.BaseBackend``): the object it names is
      documented where it is defined (``sedna_core.algorithms.backend.BaseBackend``);
    * a short name written in a module that imports it (``:class:`BackendError```): the
      unique documented object whose name ends with ``.BackendError`` (Sphinx's own search for
      ``:class:`.BackendError```); two candidates are reported as ambiguous.
    """
    if node.get("refdomain") != "py" or node.get("refspecific"):
        return None
    domain = env.get_domain("py")
    target = node["reftarget"]
    canonical = _canonical(target)
    if canonical is not None and canonical != target:
        node["reftarget"] = canonical
        found = domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
        )
        if found is not None:
            return found
        node["reftarget"] = target
    node["refspecific"] = True
    return domain.resolve_xref(
        env, node["refdoc"], app.builder, node["reftype"], target, node, contnode
    )


def _canonical(target: str) -> str | None:
    """``module.Qualname`` of the object a dotted sedna-core name reaches by import."""
    if not target.startswith("sedna_core."):
        return None
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        owner = getattr(obj, "__module__", None)
        qualname = getattr(obj, "__qualname__", None)
        return f"{owner}.{qualname}" if owner and qualname else None
    return None


def _attribute_docstring_as_prose(self: Any) -> list[str]:
    # napoleon reads an attribute's first line "words: more words" as "type: description";
    # ours are prose (the annotation gives the type), so they are kept as written
    return self._format_field("", "", self._dedent(self._consume_to_end()))


def setup(app: Any) -> None:
    from sphinx.ext.napoleon.docstring import GoogleDocstring

    GoogleDocstring._parse_attribute_docstring = _attribute_docstring_as_prose  # type: ignore[method-assign]
    app.connect("missing-reference", _resolve_short_names)
