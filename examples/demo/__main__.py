"""Run the demo: ``python -m examples.demo [section ...]`` (``make demo`` runs them all)."""

from __future__ import annotations

import importlib
import os
import sys
import time

SECTIONS = ("backends", "joint_inference", "federated", "incremental", "lifelong")


def main(argv: list[str]) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("SEDNA_LOG_FORMAT", "console")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    chosen = argv or list(SECTIONS)
    unknown = sorted(set(chosen) - set(SECTIONS))
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}", file=sys.stderr)
        return 2
    for name in chosen:
        title = name.replace("_", " ")
        print(f"\n=== {title} " + "=" * (60 - len(title)))
        start = time.perf_counter()
        importlib.import_module(f"examples.demo.{name}").run()
        print(f"--- {title}: {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
