"""``sedna calibrate``: choose a joint-inference miner's threshold from labelled validation data.

Offline: the data come from an ``.npz`` file (numpy's own format, read without pickle) holding
per validation sample what the miner judges and whether the edge's and the cloud's answers are
right. The result is printed as one JSON line, with the ``HEM_NAME``/``HEM_PARAMETERS`` values
to set; a refusal (too little data for the guarantee) is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["register"]

DESCRIPTION = """\
Choose a joint-inference miner's threshold from labelled validation data (see "Calibration"
in docs/joint-inference.md). DATA is an .npz file with the arrays
  miner_input   what the miner judges, one row per sample (the edge's class probabilities)
  edge, cloud   the edge's and the cloud's answers (labels, or vectors compared by argmax)
  y             the true labels
(or edge_correct and cloud_correct, booleans, instead of edge, cloud and y).
"""


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "calibrate",
        help="choose a joint-inference miner's threshold from validation data",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("data", type=Path, metavar="DATA", help="validation data (.npz)")
    parser.add_argument(
        "--miner", default="Confidence", help="miner to calibrate (default: Confidence)"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="another parameter of the miner, kept as given (repeatable)",
    )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--offload", type=float, metavar="SHARE", help="target share of samples for the cloud"
    )
    target.add_argument(
        "--max-accuracy-loss",
        type=float,
        metavar="LOSS",
        help="allowed loss against cloud-only accuracy, as a fraction of it (0.01: keep 99%%)",
    )
    parser.add_argument(
        "--absolute",
        action="store_true",
        help="--max-accuracy-loss is in accuracy points, not a fraction of cloud accuracy",
    )
    parser.add_argument(
        "--mode",
        choices=("point", "guaranteed"),
        default="point",
        help="point estimate, or guaranteed with probability >= 1 - delta (default: point)",
    )
    parser.add_argument(
        "--delta", type=float, default=0.1, help="failure probability of the guarantee (0.1)"
    )
    parser.set_defaults(func=_run)
    return parser


def _load(path: Path) -> tuple[Any, Any, Any]:
    import numpy as np

    from sedna_core.jobs.joint_inference._calibration import correct_answers

    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path} as an .npz file without pickles: {exc}") from None
    if "miner_input" not in arrays:
        raise ValueError(f"{path} has no 'miner_input' array (found: {sorted(arrays)})")
    if "edge_correct" in arrays and "cloud_correct" in arrays:
        return arrays["miner_input"], arrays["edge_correct"], arrays["cloud_correct"]
    missing = [k for k in ("edge", "cloud", "y") if k not in arrays]
    if missing:
        raise ValueError(
            f"{path} lacks {', '.join(missing)}: give edge, cloud and y (or edge_correct and "
            "cloud_correct)"
        )
    y = arrays["y"]
    return (
        arrays["miner_input"],
        correct_answers(arrays["edge"], y),
        correct_answers(arrays["cloud"], y),
    )


def _run(args: argparse.Namespace) -> int:
    from sedna_core.errors import SednaError
    from sedna_core.jobs.joint_inference import calibrate_threshold

    try:
        params = dict(item.split("=", 1) for item in args.param)
    except ValueError:
        sys.stderr.write(f"error: --param takes KEY=VALUE, got {args.param}\n")
        return 2
    try:
        miner_input, edge_ok, cloud_ok = _load(args.data)
        result = calibrate_threshold(
            {"method": args.miner, "param": params},
            miner_input,
            edge_ok,
            cloud_ok,
            target_offload=args.offload,
            max_accuracy_loss=args.max_accuracy_loss,
            mode=args.mode,
            delta=args.delta,
            relative=not args.absolute,
        )
    except (SednaError, ValueError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    out = result.as_dict()
    out["HEM_NAME"] = out["miner"]
    out["HEM_PARAMETERS"] = json.dumps(
        [{"key": k, "value": str(v)} for k, v in result.params.items()]
    )
    print(json.dumps(out))
    return 0
