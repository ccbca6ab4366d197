"""Kubernetes manifests of Sedna's custom resources, for running jobs under Sedna's controllers.

::

    from sedna_core.k8s import export_job_file, write_manifests

    export = export_job_file("job.yaml")          # validated against the CRD schemas
    write_manifests(export.manifests, "manifests/")

The CRD schemas ship with the package (``crds/``, copied from kubeedge/sedna; see its README).
The command line is ``sedna k8s export|validate|example|schema``; the job-file format is in
``docs/deploy.md``.
"""

from sedna_core.errors import JobFileError, ManifestError
from sedna_core.k8s._crds import (
    API_GROUP,
    API_VERSION,
    CustomResourceDefinition,
    crd_for,
    crds,
    validate_manifest,
    validation_errors,
)
from sedna_core.k8s._examples import EXAMPLES, example
from sedna_core.k8s._jobfile import (
    JOB_FILE_SCHEMA,
    JOB_KINDS,
    job_kind,
    load_job_file,
    validate_job,
)
from sedna_core.k8s._manifests import (
    CONTROLLER_VARIABLES,
    ENV_FIELDS,
    Export,
    build_manifests,
    dump_manifests,
    export_job_file,
    write_manifests,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "CONTROLLER_VARIABLES",
    "ENV_FIELDS",
    "EXAMPLES",
    "JOB_FILE_SCHEMA",
    "JOB_KINDS",
    "CustomResourceDefinition",
    "Export",
    "JobFileError",
    "ManifestError",
    "build_manifests",
    "crd_for",
    "crds",
    "dump_manifests",
    "example",
    "export_job_file",
    "job_kind",
    "load_job_file",
    "validate_job",
    "validate_manifest",
    "validation_errors",
    "write_manifests",
]
