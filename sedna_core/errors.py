"""The exceptions sedna-core raises, in one place.

Hierarchy (catch the narrowest class you can handle)::

    SednaError
    ├── ConfigError                  a setting (argument or environment variable) has a bad value
    │   └── ManifestError            a Kubernetes manifest does not satisfy its CRD schema
    │       └── JobFileError         a job file (``sedna k8s export``'s input) is malformed
    ├── PluginError                  anything about plugins and algorithm resolution
    │   ├── PluginLoadError          a plugin failed to load (raised with SEDNA_STRICT_PLUGINS=1)
    │   ├── UnknownAlgorithmError    no algorithm of that kind has that name
    │   ├── AlgorithmConflictError   two distributions register the same name
    │   ├── AlgorithmUnavailableError the distribution providing it failed to load
    │   └── InvalidParameterError    unknown, missing or ill-typed algorithm parameter
    ├── BackendError                 an estimator cannot be wrapped, trained, saved or loaded
    ├── DataSourceError              a data file is missing or malformed
    ├── WireFormatError              tensor bytes are malformed, truncated or unsafe
    ├── InvalidUpdateError           a federated client's update does not fit the global model
    │   └── ProtocolError            an aggregation-protocol control frame is malformed
    ├── ArtifactError                the artifact store cannot store or find an artifact
    │   └── IntegrityError           an artifact's bytes do not match its recorded sha256
    ├── ServiceError                 talking to a sedna service failed
    │   ├── ServiceUnavailableError  it could not be reached (refused, reset, timed out)
    │   └── RemoteError              it answered with an error (status and JSON error body kept)
    │       ├── RemoteUnavailableError  502/503/504 on every attempt (also ServiceUnavailable)
    │       └── AuthenticationError  it refused our credentials (401/403)
    ├── JobError                     a job cannot proceed (e.g. a federated round failed for good)
    └── KnowledgeBaseError           the knowledge base refused or could not serve a request
        ├── IndexValidationError     a task index does not follow its JSON Schema
        └── MigrationError           a Sedna knowledge base cannot be imported

Errors that concern a plugin carry ``plugin`` (distribution name) and, where it applies,
``hook`` or ``kind``, so a message can always say who is at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = [
    "AlgorithmConflictError",
    "AlgorithmUnavailableError",
    "ArtifactError",
    "AuthenticationError",
    "BackendError",
    "ConfigError",
    "DataSourceError",
    "IndexValidationError",
    "IntegrityError",
    "InvalidParameterError",
    "InvalidUpdateError",
    "JobError",
    "JobFileError",
    "KnowledgeBaseError",
    "ManifestError",
    "MigrationError",
    "PluginError",
    "PluginLoadError",
    "ProtocolError",
    "RemoteError",
    "RemoteUnavailableError",
    "SednaError",
    "ServiceError",
    "ServiceUnavailableError",
    "UnknownAlgorithmError",
    "UnsafeArtifactError",
    "WireFormatError",
]


class SednaError(Exception):
    """Base class of every error sedna-core raises on purpose."""


class ConfigError(SednaError, ValueError):
    """A setting has a bad value.

    ``variable`` names the argument or environment variable, ``accepted`` says what it takes.
    """

    def __init__(self, variable: str, value: object, accepted: str) -> None:
        self.variable = variable
        self.value = value
        self.accepted = accepted
        super().__init__(f"{variable}={value!r} is not valid: expected {accepted}")


class ManifestError(ConfigError):
    """A Kubernetes manifest does not satisfy its CRD schema.

    ``errors`` holds one ``"path: message"`` line per problem; ``source`` names the manifest.
    """

    def __init__(self, errors: Iterable[str], *, source: str | None = None) -> None:
        self.errors = list(errors)
        self.source = source
        self.variable = source or "manifest"
        self.value = None
        self.accepted = "; ".join(self.errors)
        head = f"{source}: " if source else ""
        lines = "\n".join(f"  - {e}" for e in self.errors)
        SednaError.__init__(self, f"{head}{len(self.errors)} problem(s):\n{lines}")


class JobFileError(ManifestError):
    """A job file (the input of ``sedna k8s export``) is malformed or inconsistent."""


class PluginError(SednaError):
    """Base class for plugin and algorithm-resolution errors."""

    def __init__(
        self,
        message: str,
        *,
        plugin: str | None = None,
        hook: str | None = None,
        kind: str | None = None,
    ) -> None:
        self.plugin = plugin
        self.hook = hook
        self.kind = kind
        super().__init__(message)


class PluginLoadError(PluginError):
    """A plugin distribution failed to load (raised instead of a warning in strict mode)."""


class UnknownAlgorithmError(PluginError, LookupError):
    """No algorithm of the requested kind has the requested name."""

    def __init__(
        self,
        message: str,
        *,
        kind: str,
        name: str,
        available: Sequence[str] = (),
        suggestion: str | None = None,
    ) -> None:
        self.name = name
        self.available = list(available)
        self.suggestion = suggestion
        super().__init__(message, kind=kind)


class AlgorithmConflictError(PluginError):
    """Two distributions register an algorithm of the same kind and name."""

    def __init__(self, message: str, *, kind: str, name: str, plugins: Sequence[str]) -> None:
        self.name = name
        self.plugins = list(plugins)
        super().__init__(message, kind=kind)


class AlgorithmUnavailableError(PluginError):
    """The requested algorithm's distribution failed to load."""


class InvalidParameterError(PluginError, TypeError):
    """An algorithm was given an unknown, missing or ill-typed parameter."""


class BackendError(SednaError):
    """An estimator cannot be wrapped, trained, saved or loaded by its backend."""


class DataSourceError(SednaError, ValueError):
    """A data file is missing or malformed; ``path`` and ``line`` say where."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {message}" if where else message)


class WireFormatError(SednaError, ValueError):
    """Tensor bytes are malformed, truncated or describe something unsafe."""


class InvalidUpdateError(SednaError, ValueError):
    """A client update does not fit the global model or holds bad values.

    ``reason`` is a short code for logs, metrics and the client: ``"count"``, ``"name"``,
    ``"dtype"``, ``"shape"``, ``"size"``, ``"nonfinite"``, ``"num_samples"``, ``"malformed"``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


class ProtocolError(InvalidUpdateError):
    """A federated-protocol control frame is not valid JSON, lacks a field or has the wrong version.

    ``reason`` is always ``"malformed"``.
    """

    def __init__(self, message: str) -> None:
        super().__init__("malformed", message)


class ArtifactError(SednaError):
    """The artifact store cannot store or find an artifact."""


class IntegrityError(ArtifactError):
    """An artifact's content does not match its recorded sha256 digest."""


class UnsafeArtifactError(ArtifactError):
    """A file is not in a format that can be verified as safe to load (a pickle, say, or bytes
    that do not parse as the format they claim); ``accepted`` lists the formats that are."""

    def __init__(self, message: str, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.accepted = accepted


class ServiceError(SednaError):
    """Talking to a sedna service failed."""


class ServiceUnavailableError(ServiceError, ConnectionError):
    """The service could not be reached: refused, reset or timed out."""


class RemoteError(ServiceError):
    """The service answered with an error status.

    ``status`` is the HTTP status; ``error_type`` and ``remote_message`` come from its JSON
    error body ``{"error": {"type": ..., "message": ...}}`` when it has one.
    """

    def __init__(
        self, status: int, error_type: str | None = None, remote_message: str | None = None
    ) -> None:
        self.status = status
        self.error_type = error_type
        self.remote_message = remote_message
        detail = f"{error_type}: {remote_message}" if error_type else (remote_message or "")
        super().__init__(f"service answered {status}" + (f" ({detail})" if detail else ""))


class RemoteUnavailableError(RemoteError, ServiceUnavailableError):
    """The service answered 502/503/504 on every attempt.

    Both a :class:`RemoteError` (``status`` and the JSON error body kept) and a
    :class:`ServiceUnavailableError`, so ``except ServiceUnavailableError`` catches every
    "cannot be served now" failure.
    """


class AuthenticationError(RemoteError):
    """The service refused our credentials (HTTP 401 or 403)."""


class JobError(SednaError):
    """A job cannot proceed."""


class KnowledgeBaseError(SednaError):
    """The knowledge base refused or could not serve a request."""


class IndexValidationError(KnowledgeBaseError, ValueError):
    """A task index does not follow the schema; ``path`` says where (``seen_task/...``)."""

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        where = f" at {path}" if path else ""
        super().__init__(f"malformed task index{where}: {message}")


class MigrationError(KnowledgeBaseError):
    """A Sedna knowledge base cannot be imported (not local, unreadable, or incomplete)."""
