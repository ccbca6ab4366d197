"""``sedna serve inference``: run a big-model service for joint-inference edges."""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import signal
import sys
import threading
from typing import Any

__all__ = ["load_object", "parse_shape", "register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "inference",
        help="serve a big model for joint-inference edges (POST /{job}/predict)",
        description=(
            "Serve a big model for JointInference edges: Sedna's JSON API and sedna-core's "
            "binary tensor format on POST /{JOB_NAME}/predict, /healthz and /metrics. "
            "Environment: JOB_NAME, BIG_MODEL_BIND_IP, BIG_MODEL_BIND_PORT, SEDNA_TOKEN, "
            "SEDNA_TLS_CERT, SEDNA_TLS_KEY, MODEL_URL, BACKEND_TYPE."
        ),
    )
    parser.add_argument(
        "--estimator",
        required=True,
        metavar="MODULE:ATTR",
        help="the big model: a class, factory or instance, e.g. mypkg.models:BigNet "
        "(imported from the working directory, as uvicorn does; see --app-dir)",
    )
    parser.add_argument(
        "--app-dir",
        default=".",
        metavar="DIR",
        help="directory put first on sys.path to import --estimator from (default: the "
        "working directory)",
    )
    parser.add_argument("--model", metavar="PATH", help="model file to load (else MODEL_URL)")
    parser.add_argument("--backend", help="backend name (else BACKEND_TYPE, else detected)")
    parser.add_argument("--job-name", help="URL segment of the API (else JOB_NAME, 'sedna')")
    parser.add_argument("--host", help="address to bind (else BIG_MODEL_BIND_IP, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to bind (else BIG_MODEL_BIND_PORT, 5000)")
    parser.add_argument(
        "--token-file", metavar="PATH", help="file holding the bearer token (else SEDNA_TOKEN)"
    )
    parser.add_argument("--tls-cert", metavar="PEM", help="certificate for HTTPS")
    parser.add_argument("--tls-key", metavar="PEM", help="private key for HTTPS")
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="allow a non-loopback bind without a token (not recommended)",
    )
    parser.add_argument("--workers", type=int, help="predictions run at once (default 1)")
    parser.add_argument(
        "--max-batch-size",
        type=int,
        metavar="N",
        help="most samples per model call when concurrent requests are batched; 1 turns "
        "batching off (else SEDNA_MAX_BATCH_SIZE, 32)",
    )
    parser.add_argument(
        "--max-queue-delay",
        type=float,
        metavar="SECONDS",
        help="how long a free worker waits for a batch to fill while another runs (else "
        "SEDNA_MAX_QUEUE_DELAY, 0.002); an idle model answers at once",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        metavar="N",
        help="requests that may wait for the model; more get 503 with Retry-After (else "
        "SEDNA_MAX_QUEUE, 1024)",
    )
    parser.add_argument(
        "--input-shape",
        metavar="D1,D2,...",
        help="shape of one sample, e.g. 64 or 3,32,32 ('*' for any size); bad requests get 400",
    )
    parser.add_argument("--input-dtype", help="dtype the data are cast to, e.g. float32")
    parser.set_defaults(func=_serve)


def load_object(spec: str, app_dir: str | None = ".") -> Any:
    """The object named by ``module:attr`` (``attr`` may be dotted), imported with ``app_dir``
    first on ``sys.path`` (a console script's path starts at its own folder, not the working
    directory, so without this ``mypkg`` beside the user would not import).

    Raises
    ------
    UsageError
        The spec is malformed, the module is not found, or it has no such attribute.
    """
    from sedna_core.cli.main import UsageError

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--estimator {spec!r}: write MODULE:ATTR, e.g. mypkg.models:BigNet")
    if app_dir is not None:
        path = os.path.abspath(app_dir)
        if not os.path.isdir(path):
            raise UsageError(f"--app-dir {app_dir!r} is not a directory")
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        obj: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name):
            raise  # the module exists but imports something missing: its own error says what
        raise UsageError(
            f"--estimator {spec!r}: no module named {exc.name!r} in {app_dir or '.'!r} or on "
            "sys.path (run from the folder that holds it, or give --app-dir)"
        ) from None
    where = module_name
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(f"--estimator {spec!r}: {where} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
        where = f"{where}.{part}"
    return obj


def parse_shape(text: str | None, option: str = "--input-shape") -> tuple[int | None, ...] | None:
    """``"3,32,32"`` -> ``(3, 32, 32)``; ``*`` (or nothing) between commas is any size."""
    from sedna_core.cli.main import UsageError

    if not text:
        return None
    shape: list[int | None] = []
    for part in text.split(","):
        part = part.strip()
        if part in ("*", ""):
            shape.append(None)
        elif part.isdigit() and int(part) > 0:
            shape.append(int(part))
        else:
            raise UsageError(
                f"{option} {text!r}: write positive sizes separated by commas, e.g. 64 or "
                "3,32,32 ('*' for any size)"
            )
    return tuple(shape)


def _serve(args: argparse.Namespace) -> int:
    from sedna_core.cli.main import EXIT_INTERRUPTED, UsageError

    # usage mistakes first, before the model and the framework are imported
    input_shape = parse_shape(args.input_shape)
    for option, value, least in (
        ("--max-batch-size", args.max_batch_size, 1),
        ("--max-queue", args.max_queue, 1),
        ("--max-queue-delay", args.max_queue_delay, 0),
    ):
        if value is not None and not value >= least:
            raise UsageError(f"{option} {value}: give a number >= {least}")
    if args.model and "://" not in args.model and not os.path.exists(args.model):
        raise UsageError(f"--model {args.model!r}: no such file")
    token = None
    if args.token_file:
        try:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip() or None
        except OSError as exc:
            raise UsageError(f"--token-file {args.token_file!r}: {exc.strerror}") from None
    estimator = load_object(args.estimator, args.app_dir)

    from sedna_core.config.joint_inference import BigModelServiceConfig
    from sedna_core.jobs.joint_inference import BigModelService
    from sedna_core.log import configure_logging

    configure_logging()
    service_config = BigModelServiceConfig.from_env(
        host=args.host,
        port=args.port,
        token=token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=True if args.insecure else None,
        workers=args.workers,
        max_batch_size=args.max_batch_size,
        max_queue_delay=args.max_queue_delay,
        max_queue=args.max_queue,
    )
    service = BigModelService(
        estimator,
        service_config=service_config,
        job_name=args.job_name,
        model_path=args.model,
        input_shape=input_shape,
        input_dtype=args.input_dtype,
        backend=args.backend,
    )
    stop = threading.Event()
    signals: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        signals.append(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    try:
        service.start(block=False)
        print(f"serving {service.predict_url}", flush=True)
        stop.wait()
    finally:
        service.close()
    return EXIT_INTERRUPTED if signal.SIGINT in signals else 0
