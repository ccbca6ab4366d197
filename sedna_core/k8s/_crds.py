"""Sedna's custom resource definitions (shipped as data) and manifest validation against them.

The schemas are the ``openAPIV3Schema`` of each CRD (see ``crds/README.md`` for the source). They
are checked with :mod:`jsonschema`, with Kubernetes' own semantics added where JSON Schema
differs:

* ``x-kubernetes-int-or-string: true`` means "an integer or a string" (``anyOf`` is added where
  the schema does not already say so); other ``x-kubernetes-*`` keywords are annotations.
* The API server silently *prunes* fields a structural schema does not declare. A misspelt
  field (``hardExampleMinning``) would vanish without an error, so by default an undeclared
  field is reported as an error here (``strict=True``).
* ``format: int32`` / ``int64`` are range-checked; ``metadata`` is checked for a DNS-1123 name.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sedna_core.errors import ManifestError

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CustomResourceDefinition",
    "crd_for",
    "crds",
    "validate_manifest",
    "validation_errors",
]

API_GROUP = "sedna.io"
API_VERSION = "sedna.io/v1alpha1"
_FILES = (
    "datasets",
    "models",
    "jointinferenceservices",
    "federatedlearningjobs",
    "incrementallearningjobs",
    "lifelonglearningjobs",
)
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass(frozen=True)
class CustomResourceDefinition:
    """One of Sedna's CRDs: names and the schema of each served version."""

    group: str
    kind: str
    plural: str
    scope: str
    #: where the schema was copied from (repository, commit, file)
    source: str
    license: str
    #: version name -> openAPIV3Schema
    schemas: Mapping[str, Mapping[str, Any]]
    storage_version: str

    @property
    def api_version(self) -> str:
        """``group/version`` of the storage version (what exported manifests use)."""
        return f"{self.group}/{self.storage_version}"

    def schema(self, version: str | None = None) -> Mapping[str, Any]:
        """The ``openAPIV3Schema`` of ``version`` (the storage version by default)."""
        name = version or self.storage_version
        try:
            return self.schemas[name]
        except KeyError:
            raise ManifestError(
                [f"{self.kind} has no version {name!r}; versions: {sorted(self.schemas)}"]
            ) from None


@functools.cache
def crds() -> dict[str, CustomResourceDefinition]:
    """Every shipped CRD by kind (``JointInferenceService``, ``Dataset``, ...)."""
    out = {}
    folder = resources.files("sedna_core.k8s").joinpath("crds")
    for stem in _FILES:
        doc = json.loads(folder.joinpath(f"{stem}.json").read_text(encoding="utf-8"))
        versions = doc["versions"]
        storage = next((v["name"] for v in versions if v.get("storage")), versions[0]["name"])
        out[doc["kind"]] = CustomResourceDefinition(
            group=doc["group"],
            kind=doc["kind"],
            plural=doc["plural"],
            scope=doc["scope"],
            source=doc["source"],
            license=doc["license"],
            schemas={v["name"]: v["openAPIV3Schema"] for v in versions},
            storage_version=storage,
        )
    return out


def crd_for(kind: str) -> CustomResourceDefinition:
    """The CRD of ``kind`` (its kind, plural or singular name, any case)."""
    key = kind.strip().lower()
    for crd in crds().values():
        if key in (crd.kind.lower(), crd.plural, crd.plural.rstrip("s")):
            return crd
    raise ManifestError(
        [f"kind {kind!r} is not one of Sedna's resources: {', '.join(sorted(crds()))}"]
    )


def validation_errors(manifest: Mapping[str, Any], *, strict: bool = True) -> list[str]:
    """Everything wrong with ``manifest``, as ``"path: message"`` lines (empty when valid).

    Parameters
    ----------
    manifest
        One Kubernetes object (a parsed YAML document).
    strict
        Report fields the schema does not declare (the API server would drop them silently).
    """
    if not isinstance(manifest, Mapping):
        return [f"<root>: a manifest must be a mapping, got {type(manifest).__name__}"]
    kind = manifest.get("kind")
    if not isinstance(kind, str) or not kind:
        return ["kind: missing; expected one of " + ", ".join(sorted(crds()))]
    crd = crds().get(kind)
    if crd is None:
        return [f"kind: {kind!r} is not one of Sedna's resources: {', '.join(sorted(crds()))}"]
    errors: list[str] = []
    api_version = manifest.get("apiVersion")
    group, _, version = str(api_version or "").partition("/")
    if group != crd.group or version not in crd.schemas:
        allowed = ", ".join(f"{crd.group}/{v}" for v in sorted(crd.schemas))
        errors.append(f"apiVersion: {api_version!r} is not served for {kind}; use {allowed}")
        version = crd.storage_version
    errors += _metadata_errors(manifest.get("metadata"), namespaced=crd.scope == "Namespaced")
    validator = _validator(kind, version, strict)
    for err in validator.iter_errors(manifest):
        errors.append(f"{json_path(err.absolute_path)}: {_message(err)}")
    return sorted(set(errors))


def validate_manifest(manifest: Mapping[str, Any], *, strict: bool = True) -> None:
    """Raise :class:`ManifestError` listing every problem of ``manifest``; None when valid."""
    errors = validation_errors(manifest, strict=strict)
    if errors:
        meta = manifest.get("metadata") if isinstance(manifest, Mapping) else None
        name = meta.get("name") if isinstance(meta, Mapping) else None
        kind = manifest.get("kind", "?") if isinstance(manifest, Mapping) else "?"
        raise ManifestError(errors, source=f"{kind}/{name}" if name else str(kind))


# -- internals -------------------------------------------------------------------------------


@functools.cache
def _validator(kind: str, version: str, strict: bool) -> Any:
    import jsonschema

    schema = _kubernetes_semantics(copy.deepcopy(dict(crds()[kind].schema(version))), strict)
    checker = jsonschema.FormatChecker(formats=())
    for fmt, (low, high) in _INT_RANGES.items():
        checker.checks(fmt)(functools.partial(_in_range, low=low, high=high))
    return jsonschema.Draft7Validator(schema, format_checker=checker)


def _in_range(value: object, *, low: int, high: int) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or low <= value <= high


def _kubernetes_semantics(node: Any, strict: bool) -> Any:
    if isinstance(node, list):
        return [_kubernetes_semantics(v, strict) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "properties":  # maps field names to schemas (a field may be called "type")
            out[key] = {k: _kubernetes_semantics(v, strict) for k, v in value.items()}
        else:
            out[key] = _kubernetes_semantics(value, strict)
    if out.get("x-kubernetes-int-or-string") and "anyOf" not in out:
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
        out.pop("type", None)
    if (
        strict
        and "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _metadata_errors(meta: Any, *, namespaced: bool) -> list[str]:
    if not isinstance(meta, Mapping):
        return ["metadata: missing; it needs at least a name"]
    errors = []
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        errors.append("metadata.name: missing")
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(
            f"metadata.name: {name!r} is not a DNS-1123 subdomain (lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit, at most 253 characters)"
        )
    namespace = meta.get("namespace")
    if namespace is not None and not namespaced:
        errors.append("metadata.namespace: this resource is cluster-scoped")
    if namespace is not None and (
        not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace)
    ):
        errors.append(f"metadata.namespace: {namespace!r} is not a DNS-1123 label")
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and not (
            isinstance(value, Mapping)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
        ):
            errors.append(f"metadata.{field}: must map strings to strings")
    return errors


def json_path(parts: Iterable[Any]) -> str:
    """``spec.workers[0].template`` from a validation error's path parts (``<root>`` if none)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _message(err: Any) -> str:
    if err.validator == "additionalProperties" and err.validator_value is False:
        declared = sorted(err.schema.get("properties", {}))
        return (
            f"{err.message}; Kubernetes would drop it silently. Declared fields here: "
            + ", ".join(declared)
        )
    if err.validator == "format" and err.validator_value in _INT_RANGES:
        return f"{err.instance!r} is out of range for {err.validator_value}"
    return str(err.message)
