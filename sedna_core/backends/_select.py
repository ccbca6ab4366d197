"""``set_backend``: from an estimator (and maybe a name) to a backend instance."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, overload

from sedna_core.algorithms.backend import BaseBackend
from sedna_core.backends._generic import GenericBackend
from sedna_core.errors import BackendError, UnknownAlgorithmError
from sedna_core.log import get_logger

if TYPE_CHECKING:
    from sedna_core.config import JobConfig
    from sedna_core.plugins._manager import SednaPluginManager

__all__ = [
    "BACKEND_TYPES",
    "FRAMEWORK_PLUGINS",
    "TF1_NOTE",
    "backend_name",
    "install_hint",
    "set_backend",
    "users_own_class",
]

log = get_logger(__name__)

#: Sedna's ``BACKEND_TYPE`` values -> registered backend names
BACKEND_TYPES: dict[str, str] = {
    "KERAS": "keras",
    "TENSORFLOW": "keras",
    "TF": "keras",
    "TORCH": "torch",
    "PYTORCH": "torch",
    "SKLEARN": "sklearn",
    "SCIKIT-LEARN": "sklearn",
    "XGBOOST": "xgboost",
    "CUSTOM": "custom",
}

TF1_NOTE = (
    "BACKEND_TYPE=TENSORFLOW means Keras 3 on TensorFlow (the keras backend): TF1 graphs and "
    "sessions (tf.compat.v1) are not supported, sedna-core creates no Session for them"
)


def backend_name(requested: str) -> str:
    """The registered backend name for a ``BACKEND_TYPE`` value or backend name.

    ``"TENSORFLOW"`` -> ``"keras"``, ``"PYTORCH"`` -> ``"torch"``; other names (and
    ``"distribution:name"``) pass through for the registry to resolve.
    """
    qualifier, sep, bare = requested.strip().rpartition(":")
    mapped = BACKEND_TYPES.get(bare.strip().upper(), bare.strip())
    return f"{qualifier}{sep}{mapped}"


@overload
def set_backend(
    estimator: None,
    backend: str | None = None,
    *,
    config: JobConfig | None = None,
    plugin_manager: SednaPluginManager | None = None,
) -> None: ...


@overload
def set_backend(
    estimator: Any,
    backend: str | None = None,
    *,
    config: JobConfig | None = None,
    plugin_manager: SednaPluginManager | None = None,
) -> BaseBackend: ...


def set_backend(
    estimator: Any,
    backend: str | None = None,
    *,
    config: JobConfig | None = None,
    plugin_manager: SednaPluginManager | None = None,
) -> BaseBackend | None:
    """Wrap ``estimator`` in the backend that fits it.

    1. A :class:`BaseBackend` is returned as it is (``None`` gives ``None``).
    2. A backend named by ``backend``, else by ``config.backend_type`` (``BACKEND_TYPE``; read
       from the environment when no config is given): ``KERAS``, ``TENSORFLOW`` (Keras 3 on
       TensorFlow), ``TORCH``, ``SKLEARN``, ``XGBOOST``, ``CUSTOM``, or any registered name.
       If that backend does not recognise the estimator but the estimator has Sedna's own
       ``train``/``predict`` methods (a "Customize" estimator that drives the framework
       itself), the generic adapter wraps it, as Sedna's backends did.
    3. Otherwise the ``sedna_detect_backend`` hook names the backend from the estimator's type.
    4. Otherwise the generic adapter, for an estimator with ``predict`` and ``train``/``fit``.

    ``estimator`` may be an instance or a class/function that builds it (called lazily).

    Raises
    ------
    BackendError
        Nothing can wrap the estimator.
    UnknownAlgorithmError, AlgorithmUnavailableError
        The named backend is not installed or its plugin failed to load.
    """
    if estimator is None:
        return None
    if isinstance(estimator, BaseBackend):
        return estimator
    if isinstance(estimator, type) and issubclass(estimator, BaseBackend):
        raise BackendError(
            f"{estimator.__qualname__} is a backend class: pass the model (or its factory) "
            f"and backend={estimator.name!r}, or an instance of the backend"
        )
    requested = backend
    if requested is None:
        requested = config.backend_type if config is not None else os.environ.get("BACKEND_TYPE")
    if requested and requested.strip():
        return _named(estimator, requested.strip(), plugin_manager)
    detected = _detect(estimator, plugin_manager)
    if detected is not None:
        cls = _resolve(detected, plugin_manager)
        log.debug("backend detected", backend=cls.name, estimator=_type_name(estimator))
        return cls(estimator=estimator)  # type: ignore[call-arg]
    framework = _framework_of(estimator)
    if framework is not None and not users_own_class(estimator):
        plugin = FRAMEWORK_PLUGINS[framework]
        raise BackendError(
            f"{_type_name(estimator)} is a {framework} model, and its backend plugin "
            f"sedna-plugin-{plugin} is not installed (or is disabled): {install_hint(plugin)}; "
            "or name an installed backend with backend=, --backend or BACKEND_TYPE"
        )
    if GenericBackend.accepts(estimator):
        return _generic(plugin_manager)(estimator=estimator)  # type: ignore[call-arg]
    raise BackendError(
        f"no backend recognises {_type_name(estimator)}: install the plugin for its framework "
        "(sedna plugins list shows what is installed), name one with backend= or "
        "BACKEND_TYPE, or give the estimator predict() and train()/fit() methods"
    )


def _named(estimator: Any, requested: str, pm: SednaPluginManager | None) -> BaseBackend:
    name = backend_name(requested)
    tensorflow = requested.upper() in ("TENSORFLOW", "TF")
    try:
        cls = _resolve(name, pm)
    except UnknownAlgorithmError as exc:
        if name != requested and users_own_class(estimator):
            # Sedna's backends only set the framework up around the user's class; without the
            # plugin there is no framework set-up to do, but the class still runs as written.
            log.warning(
                "the backend BACKEND_TYPE selects is not installed: calling the estimator's own "
                "methods without its framework set-up (devices)",
                requested=requested,
                backend=name,
                estimator=_type_name(estimator),
            )
            return _generic(pm)(estimator=estimator)  # type: ignore[call-arg]
        if name == requested:
            raise
        raise UnknownAlgorithmError(
            f"{requested!r} selects the {name!r} backend, which is not installed"
            + (f" ({install_hint(name)})" if name in FRAMEWORK_PLUGINS.values() else "")
            + f": {exc}",
            kind="backend",
            name=name,
            available=exc.available,
            suggestion=exc.suggestion,
        ) from exc
    if cls is not GenericBackend and not cls.accepts(estimator) and users_own_class(estimator):
        # Sedna's examples all wrap the framework in the user's own class (load/predict, and
        # train where it trains): its methods are called, and the backend type only sets up
        # the framework (devices, the model file's suffix), as Sedna's backends did.
        log.info(
            "estimator is the user's own class: calling its methods, with the framework "
            "set-up of the backend BACKEND_TYPE names",
            requested=requested,
            backend=cls.name,
            estimator=_type_name(estimator),
            note=TF1_NOTE if tensorflow else None,
        )
        return _generic_in_context(cls, estimator, pm)
    if cls.name in _GENERAL_APIS:
        # BACKEND_TYPE=SKLEARN with an XGBoost model (Sedna's README does this): the model's
        # own backend handles it natively (its formats, early stopping), whichever names it.
        native = _native_backend(estimator, cls, pm)
        if native is not None:
            log.info(
                "the estimator has its own backend: using it",
                requested=requested,
                backend=native.name,
                estimator=_type_name(estimator),
            )
            return native(estimator=estimator)  # type: ignore[call-arg]
    try:
        return cls(estimator=estimator)  # type: ignore[call-arg]
    except BackendError as exc:
        if tensorflow and TF1_NOTE not in str(exc):
            raise BackendError(f"{exc}. {TF1_NOTE}") from exc
        raise


#: backends that wrap an API other frameworks' estimators imitate (scikit-learn's): a model
#: whose framework has a backend of its own goes there instead
_GENERAL_APIS = frozenset({"sklearn"})


#: a framework's top-level module -> the first-party backend plugin that wraps its models
FRAMEWORK_PLUGINS: dict[str, str] = {
    "sklearn": "sklearn",
    "keras": "keras",
    "tensorflow": "keras",
    "tf_keras": "keras",
    "torch": "torch",
    "xgboost": "xgboost",
}


def install_hint(plugin: str) -> str:
    """How to install a first-party backend plugin (nothing is published on PyPI)."""
    return f"pip install ./sedna_plugins/{plugin} from the sedna-core repository"


def _framework_of(estimator: Any) -> str | None:
    """The framework whose class ``estimator`` is (or builds), from module names only: the
    framework is never imported for this."""
    cls = estimator if isinstance(estimator, type) else type(estimator)
    for klass in getattr(cls, "__mro__", (cls,)):
        root = (getattr(klass, "__module__", "") or "").partition(".")[0]
        if root in FRAMEWORK_PLUGINS:
            return root
    return None


def _native_backend(
    estimator: Any, general: type[BaseBackend], pm: SednaPluginManager | None
) -> type[BaseBackend] | None:
    """A framework's own backend that accepts ``estimator`` (not a general-API one)."""
    from sedna_core.plugins._manager import get_plugin_manager

    manager = pm if pm is not None else get_plugin_manager()
    for _name, cls in sorted(manager.algorithms("backend").items()):
        if (
            isinstance(cls, type)
            and issubclass(cls, BaseBackend)
            and cls is not general
            and cls.name not in _GENERAL_APIS
            and not issubclass(cls, GenericBackend)
            and cls.accepts(estimator)
        ):
            return cls
    return None


def users_own_class(estimator: Any) -> bool:
    """Whether ``estimator`` is the user's own wrapper of a framework (Sedna's "Customize"
    estimator): it predicts, and loads or trains, through methods it defines itself."""
    if estimator is None or isinstance(estimator, BaseBackend):
        return False
    if not callable(getattr(estimator, "predict", None)):
        return False
    return any(callable(getattr(estimator, m, None)) for m in ("train", "load"))


def _generic_in_context(
    cls: type[BaseBackend], estimator: Any, pm: SednaPluginManager | None
) -> BaseBackend:
    generic = _generic(pm)
    if issubclass(generic, GenericBackend):
        return generic(estimator=estimator, context=cls)
    return generic(estimator=estimator)  # type: ignore[call-arg]


def _resolve(name: str, pm: SednaPluginManager | None) -> type[BaseBackend]:
    from sedna_core.plugins._registry import resolve_algorithm

    try:
        return resolve_algorithm("backend", name, plugin_manager=pm)  # type: ignore[return-value]
    except UnknownAlgorithmError:
        if name.casefold() == GenericBackend.name:
            return GenericBackend  # the core's own adapter, even if no hook module registers it
        raise


def _generic(pm: SednaPluginManager | None) -> type[BaseBackend]:
    return _resolve(GenericBackend.name, pm)


def _detect(estimator: Any, pm: SednaPluginManager | None) -> str | None:
    from sedna_core.plugins._manager import get_plugin_manager

    manager = pm if pm is not None else get_plugin_manager()
    name = manager.hook.sedna_detect_backend(estimator=estimator)
    return str(name) if name else None


def _type_name(obj: Any) -> str:
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"
