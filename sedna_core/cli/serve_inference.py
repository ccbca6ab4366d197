"""``sedna serve inference``: run a big-model service for joint-inference edges."""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import threading
from typing import Any

__all__ = ["load_object", "register"]


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
        help="the big model: a class, factory or instance, e.g. mypkg.models:BigNet",
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
        "--input-shape",
        metavar="D1,D2,...",
        help="shape of one sample, e.g. 64 or 3,32,32 ('*' for any size); bad requests get 400",
    )
    parser.add_argument("--input-dtype", help="dtype the data are cast to, e.g. float32")
    parser.set_defaults(func=_serve)


def load_object(spec: str) -> Any:
    """The object named by ``module:attr`` (``attr`` may be dotted)."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--estimator {spec!r}: write MODULE:ATTR, e.g. mypkg.models:BigNet")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _shape(text: str | None) -> tuple[int | None, ...] | None:
    if not text:
        return None
    return tuple(None if p.strip() in ("*", "") else int(p) for p in text.split(","))


def _serve(args: argparse.Namespace) -> int:
    from sedna_core.config.joint_inference import BigModelServiceConfig
    from sedna_core.errors import SednaError
    from sedna_core.jobs.joint_inference import BigModelService
    from sedna_core.log import configure_logging

    configure_logging()
    try:
        token = None
        if args.token_file:
            with open(args.token_file, encoding="utf-8") as fh:
                token = fh.read().strip() or None
        service_config = BigModelServiceConfig.from_env(
            host=args.host,
            port=args.port,
            token=token,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            insecure=True if args.insecure else None,
            workers=args.workers,
        )
        service = BigModelService(
            load_object(args.estimator),
            service_config=service_config,
            job_name=args.job_name,
            model_path=args.model,
            input_shape=_shape(args.input_shape),
            input_dtype=args.input_dtype,
            backend=args.backend,
        )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        service.start(block=False)
    except (SednaError, ValueError, ImportError, AttributeError, OSError) as exc:
        print(f"sedna serve inference: {exc}", file=sys.stderr)
        return 2
    print(f"serving {service.predict_url}", flush=True)
    try:
        stop.wait()
    finally:
        service.close()
    return 0
