"""Migration from KubeEdge Sedna: an offline importer for a trusted local knowledge base.

::

    from sedna_core.migration import import_sedna_kb
    report = import_sedna_kb("/old/kb", "/new/kb", attribute=["Season", "City"])

or ``sedna kb import-sedna /old/kb /new/kb --trusted --attribute Season --attribute City``.
Sedna's ``index.pkl`` is read by a restricted unpickler that maps Sedna's classes onto plain
stand-ins (:mod:`sedna_core.migration._standins`); nothing is downloaded and nothing named in
the pickle is imported. See ``docs/migrating-from-sedna.md``.
"""

from sedna_core.errors import MigrationError
from sedna_core.migration._convert import UNPICKLE_WARNING, ImportReport, import_sedna_kb
from sedna_core.migration._unpickle import load_index

__all__ = [
    "UNPICKLE_WARNING",
    "ImportReport",
    "MigrationError",
    "import_sedna_kb",
    "load_index",
]
