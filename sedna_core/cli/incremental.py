"""``sedna incremental``: run the incremental-learning loop on a stream, inspect a workspace.

::

    sedna incremental run                      # built-in SEA stream with an abrupt drift
    sedna incremental run --stream data.csv --label-column label --model tree --json
    sedna incremental status                   # the workspace `run` used

Both default to the job's workspace, ``sedna-incremental/<JOB_NAME>`` under the working
directory (``SEDNA_IL_WORKSPACE`` or ``--workspace`` choose another).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

MODELS = ("logistic", "sgd", "tree", "naive_bayes")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "incremental", help="incremental learning: run the loop on a stream, inspect versions"
    )
    sub = parser.add_subparsers(dest="incremental_command", metavar="ACTION", required=True)

    run = sub.add_parser(
        "run",
        help="infer, mine, label (oracle), retrain, gate and deploy over a stream",
        description="Run the incremental-learning loop over a stream of labelled samples. The "
        "stream's labels are used as the labelling oracle for the samples the loop picks, and "
        "to measure prequential accuracy.",
    )
    run.add_argument(
        "--stream",
        default="sea",
        help="'sea' (built-in synthetic stream with an abrupt drift) or a CSV file",
    )
    run.add_argument("--label-column", default="-1", help="CSV label column: index or name")
    run.add_argument("--samples", type=int, default=20_000, help="samples of the sea stream")
    run.add_argument("--drift-at", type=int, default=None, help="drift position (sea: half)")
    run.add_argument("--batch-size", type=int, default=50, help="samples per inference call")
    run.add_argument("--model", choices=MODELS, default="logistic", help="scikit-learn model")
    run.add_argument("--miner", default="Margin", help="hard-example miner name")
    run.add_argument(
        "--miner-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="miner parameter (repeatable); default for Margin: threshold=0.75",
    )
    run.add_argument("--explore", type=float, default=0.01, help="random labelling share")
    run.add_argument(
        "--rule",
        default="accuracy_delta > 0.02 and paired_z > 2",
        help="deploy rule the gate applies to each candidate (default: %(default)s)",
    )
    run.add_argument(
        "--trigger", default="num_of_samples >= 25", help="when to retrain (default: %(default)s)"
    )
    run.add_argument(
        "--min-eval-size", type=int, default=50, help="fewest held-out samples a decision needs"
    )
    run.add_argument("--gate-size", type=int, default=50, help="held-out samples per decision")
    run.add_argument("--span", type=int, default=1000, help="labelled samples a retrain uses")
    run.add_argument("--window", type=int, default=500, help="samples per reported window")
    run.add_argument("--bootstrap", type=int, default=1000, help="labelled samples to start")
    run.add_argument(
        "--workspace",
        default=None,
        help="versions and decisions (default: sedna-incremental/<JOB_NAME>, kept for `status`)",
    )
    run.add_argument("--seed", type=int, default=0, help="seed of the stream and the sampling")
    run.add_argument("--json", action="store_true", help="JSON lines instead of text")
    run.add_argument(
        "--no-progress", action="store_true", help="no progress bar (shown only on a terminal)"
    )
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="versions, serving version and decisions")
    status.add_argument(
        "--workspace", default=None, help="default: sedna-incremental/<JOB_NAME>, as `run` uses"
    )
    status.add_argument("--name", default=None, help="model name (default: the only one)")
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(func=_status)


def _emit(args: argparse.Namespace, event: str, text: str, data: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps({"event": event, **data}), flush=True)
    else:
        print(text, flush=True)


def _model(name: str, seed: int) -> Any:
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=0.3, max_iter=1000)  # unscaled CSV columns converge too
    if name == "sgd":
        from sklearn.linear_model import SGDClassifier

        return SGDClassifier(loss="log_loss", random_state=seed)
    if name == "tree":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(max_depth=6, random_state=seed)
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB()


def _workspace(given: str | None) -> str:
    from sedna_core.config.incremental import IncrementalConfig

    return given or IncrementalConfig.from_env().workspace


class _Progress:
    """A progress bar on stderr while the stream runs, only when stderr is a terminal."""

    def __init__(self, total: int | None, enabled: bool) -> None:
        self._progress: Any = None
        self._task: Any = None
        if not enabled or not sys.stderr.isatty():
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        self._progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
            # on one terminal, rich prints the window lines above the bar; when stdout is a
            # pipe or a file, the lines stay there (results never move to stderr)
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        )
        self._task = self._progress.add_task("samples", total=total)

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
        return self

    def update(self, done: int) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def _params(items: list[str], miner: str) -> dict[str, str]:
    if not items and miner == "Margin":
        return {"threshold": "0.75"}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--miner-param {item!r}: expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _run(args: argparse.Namespace) -> int:
    import itertools
    import os

    import numpy as np

    from sedna_core.cli._checks import quiet_logging, writable_dir
    from sedna_core.errors import ConfigError, SednaError
    from sedna_core.jobs.incremental import (
        IncrementalLearning,
        LoopRunner,
        csv_stream,
        sea_drift_stream,
    )

    if args.stream == "sea":
        drift_at = args.drift_at if args.drift_at is not None else args.samples // 2
        stream = sea_drift_stream(
            args.samples, drift_at=drift_at, batch_size=args.batch_size, seed=args.seed
        )
    else:
        drift_at = args.drift_at
        label: int | str = (
            int(args.label_column) if args.label_column.lstrip("-").isdigit() else args.label_column
        )
        if not os.path.isfile(args.stream):
            raise SystemExit(f"--stream {args.stream!r}: neither 'sea' nor a CSV file")
        stream = csv_stream(args.stream, label_column=label, batch_size=args.batch_size)

    # one line per window on stdout; the job's own log lines only at LOG_LEVEL=DEBUG/INFO
    quiet_logging()
    workspace = _workspace(args.workspace)
    writable_dir(workspace, "--workspace")
    total = args.samples if args.stream == "sea" else None
    progress = _Progress(total, enabled=not args.json and not args.no_progress)

    def on_window(w: Any) -> None:
        _emit(
            args,
            "window",
            f"samples {w.start:>6}-{w.end:<6} accuracy {w.accuracy:.3f}  labels {w.labels:>4}"
            f"  model v{w.version}",
            {
                "start": w.start,
                "end": w.end,
                "accuracy": w.accuracy,
                "labels": w.labels,
                "version": w.version,
            },
        )
        progress.update(w.end)

    try:
        job = IncrementalLearning(
            _model(args.model, args.seed),
            {"method": args.miner, "param": _params(args.miner_param, args.miner)},
            workspace=workspace,
            deploy_rule=args.rule,
            min_eval_size=args.min_eval_size,
            train_trigger=args.trigger,
            mine_proba=True,
        )
        runner = LoopRunner(
            job,
            explore=args.explore,
            span=args.span,
            gate_size=args.gate_size,
            window=args.window,
            seed=args.seed,
            on_window=on_window,
            on_decision=lambda pos, d: _emit(
                args,
                "decision",
                f"  at {pos}: candidate v{d.candidate} "
                f"{'DEPLOYED' if d.deployed else 'rejected'} ({d.reason}; "
                + ", ".join(f"{k}={v:.3g}" for k, v in d.values.items())
                + ")",
                {"position": pos, **d.to_dict()},
            ),
        )
        with job, progress:
            xs, ys, taken = [], [], 0
            it = iter(stream)
            while taken < args.bootstrap:
                batch = next(it, None)
                if batch is None:
                    break
                xs.append(batch[0])
                ys.append(batch[1])
                taken += len(batch[1])
            if not xs:
                print("sedna incremental run: the stream is empty", file=sys.stderr)
                return 1
            runner.bootstrap(np.concatenate(xs), np.concatenate(ys))
            _emit(
                args,
                "bootstrap",
                f"bootstrap: model trained on {taken} labelled samples",
                {"samples": taken},
            )
            report = runner.run(itertools.chain(it))
        summary = report.summary(drift_at=drift_at)
        if args.json:
            print(json.dumps({"event": "summary", **summary, "workspace": workspace}), flush=True)
        else:
            print("summary: " + ", ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
            print(
                f"versions and decisions kept in {workspace}: sedna incremental status"
                + (f" --workspace {workspace}" if args.workspace else ""),
                flush=True,
            )
        return 0
    except SednaError as exc:
        print(f"sedna incremental run: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2 if isinstance(exc, ConfigError) else 1


def _status(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sedna_core.artifacts import ArtifactStore
    from sedna_core.clock import SystemClock
    from sedna_core.errors import SednaError
    from sedna_core.jobs.incremental import ModelVersions

    root = Path(_workspace(args.workspace))
    if not (root / "store").is_dir():
        print(
            f"sedna incremental status: no workspace at {root} (run `sedna incremental run` "
            "first, or give the --workspace it used)",
            file=sys.stderr,
        )
        return 1
    try:
        names = ArtifactStore(root / "store").names()
        name = args.name or (names[0] if len(names) == 1 else None)
        if name is None:
            print(f"sedna incremental status: choose --name among {names}", file=sys.stderr)
            return 1
        versions = ModelVersions(root, name, clock=SystemClock())
        doc = {
            "name": name,
            "serving": versions.serving,
            "history": versions.history,
            "rejected": versions.rejected,
            "versions": [
                {
                    "version": v.version,
                    "format": v.format,
                    "created": v.created,
                    "metadata": v.metadata,
                }
                for v in versions.versions()
            ],
            "decisions": [d.to_dict() for d in versions.decisions()],
        }
    except SednaError as exc:
        print(f"sedna incremental status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(doc, indent=2))
        return 0
    print(
        f"model {name}: serving v{doc['serving']}, deployed {doc['history']}, "
        f"rejected {len(doc['rejected'])}, versions {len(doc['versions'])}"
    )
    for d in doc["decisions"][-10:]:
        print(
            f"  {d['kind']:<10} v{d['candidate']} {'deployed' if d['deployed'] else 'rejected'}: "
            f"{d['reason']}"
        )
    return 0
