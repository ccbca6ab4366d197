"""Refresh the CRD schemas shipped under ``sedna_core/k8s/crds/`` from Sedna's ``build/crds``.

Run by maintainers only (never at runtime)::

    python -m sedna_core.k8s._vendor /path/to/sedna/build/crds "kubeedge/sedna@<commit>"

Each output file keeps the schema that a manifest must satisfy
(``spec.versions[].schema.openAPIV3Schema``) plus the names needed to write manifests; the
``description`` texts are dropped (they are documentation, 90 % of the bytes, and never
affect validation).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

CRD_DIR = Path(__file__).with_name("crds")
LICENSE = "Apache-2.0"


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k != "description"}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def vendor(source_dir: Path, source: str) -> list[Path]:
    written = []
    for path in sorted(source_dir.glob("sedna.io_*.yaml")):
        crd = yaml.safe_load(path.read_text(encoding="utf-8"))
        spec = crd["spec"]
        versions = [
            {
                "name": v["name"],
                "served": v.get("served", True),
                "storage": v.get("storage", False),
                "openAPIV3Schema": _strip(v["schema"]["openAPIV3Schema"]),
            }
            for v in spec["versions"]
        ]
        doc = {
            "source": f"{source}: build/crds/{path.name}",
            "license": LICENSE,
            "group": spec["group"],
            "kind": spec["names"]["kind"],
            "plural": spec["names"]["plural"],
            "scope": spec["scope"],
            "versions": versions,
        }
        out = CRD_DIR / f"{spec['names']['plural']}.json"
        out.write_text(json.dumps(doc, sort_keys=True, separators=(",", ":")) + "\n", "utf-8")
        written.append(out)
    return written


if __name__ == "__main__":  # pragma: no cover - maintainer tool
    for p in vendor(Path(sys.argv[1]), sys.argv[2]):
        sys.stdout.write(f"{p}\n")
