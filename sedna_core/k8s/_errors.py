"""Errors of the manifest tools: both are configuration errors listing every problem found."""

from __future__ import annotations

from collections.abc import Iterable

from sedna_core.errors import ConfigError, SednaError

__all__ = ["JobFileError", "ManifestError"]


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
