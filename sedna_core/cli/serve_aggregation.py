"""``sedna serve aggregation``: run the federated-learning aggregation server for one job."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "aggregation",
        help="run the federated-learning aggregation server",
        description=(
            "Serve one federated-learning job: wait for clients, run the rounds, write a "
            "checkpoint after each round (with --checkpoint-dir) and exit when the job ends "
            "(0: completed, 1: failed). Options left out come from the environment "
            "(AGG_BIND_IP, AGG_BIND_PORT, EXIT_ROUND, PARTICIPANTS_COUNT, AGG_*, SEDNA_TOKEN)."
        ),
    )
    p.add_argument("--aggregation", "-a", help="algorithm name (default FedAvg)")
    p.add_argument(
        "--param",
        "-p",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an algorithm parameter (repeatable), e.g. -p eta=0.01",
    )
    p.add_argument(
        "--transforms",
        "-t",
        metavar="CHAIN",
        help=(
            "the job's update-transform chain, in order: comma-separated names "
            "(Int8 or TopK,Int8) or JSON, a list of names and "
            '{"method": NAME, "param": {...}} objects (else AGG_TRANSFORMS)'
        ),
    )
    p.add_argument("--exit-round", type=int, help="training rounds")
    p.add_argument("--participants", type=int, help="clients to wait for before each round")
    p.add_argument("--quorum", type=int, help="valid updates a round needs")
    p.add_argument("--deadline", type=float, help="seconds a round may take")
    p.add_argument("--fraction", type=float, help="share of clients asked per round")
    p.add_argument("--evaluate-every", type=int, help="federated evaluation every N rounds")
    p.add_argument(
        "--evaluate-fraction", type=float, help="share of clients asked to evaluate (0-1]"
    )
    p.add_argument("--seed", type=int, help="seed of client sampling")
    p.add_argument("--max-retries", type=int, help="retries of a round that missed its quorum")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="bind port (default 7363; 0 picks a free one)")
    p.add_argument("--token", help="job token clients present (prefer SEDNA_TOKEN)")
    p.add_argument("--client-tokens", help="JSON object client id -> token, or @FILE")
    p.add_argument("--tls-cert", help="TLS certificate (PEM) for wss://")
    p.add_argument("--tls-key", help="TLS private key (PEM)")
    p.add_argument("--checkpoint-dir", help="artifact store for per-round checkpoints")
    p.add_argument(
        "--initial-weights", help="starting model: a .npz file (arrays in order, no pickles)"
    )
    p.add_argument("--job-name", help="job name (else JOB_NAME, 'sedna')")
    p.add_argument("--linger", type=float, help="seconds to serve the final model after the end")
    p.add_argument(
        "--json", action="store_true", help="print one JSON line per round instead of text"
    )
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio

    import attrs

    from sedna_core.config.federated import AggregationServerConfig, to_client_tokens
    from sedna_core.errors import SednaError
    from sedna_core.jobs.federated import AggregationServer

    try:
        config = AggregationServerConfig.from_env(
            aggregation=_algorithm(args.aggregation, args.param),
            exit_round=args.exit_round,
            participants_count=args.participants,
            quorum=args.quorum,
            round_deadline=args.deadline,
            fraction=args.fraction,
            evaluate_every=args.evaluate_every,
            evaluate_fraction=args.evaluate_fraction,
            seed=args.seed,
            max_retries=args.max_retries,
            host=args.host,
            port=args.port,
            token=args.token,
            client_tokens=to_client_tokens(args.client_tokens) if args.client_tokens else None,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            checkpoint_dir=args.checkpoint_dir,
            job_name=args.job_name,
            transforms=_transforms(args.transforms),
        )
        if args.linger is not None:
            config = attrs.evolve(config, linger=args.linger)
        server = AggregationServer(
            config=config,
            initial_weights=_load_weights(args.initial_weights),
            on_round=_printer(args.json, config.exit_round),
        )
        result = asyncio.run(_serve(server))
    except SednaError as exc:
        from sedna_core.cli.main import exit_code, fail

        fail("sedna serve aggregation", exc)
        return exit_code(exc)  # 2 for settings, 1 for what failed while serving
    except KeyboardInterrupt:
        return 130
    if result is None:  # Ctrl-C or SIGTERM
        print("sedna serve aggregation: stopped before the job ended", file=sys.stderr)
        return 130
    if result.status != "completed":
        print(f"job failed: {result.message}", file=sys.stderr)
        return 1
    print(f"job completed: {result.rounds} round(s)", flush=True)
    return 0


async def _serve(server: Any) -> Any:
    import asyncio
    import contextlib
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # Windows has no handlers
            loop.add_signal_handler(sig, stop.set)
    await server.astart()
    print(f"sedna aggregation server listening on {server.ws_url}", flush=True)
    try:
        job = asyncio.ensure_future(server.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({job, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if not job.done():
            job.cancel()
            return None
        result = job.result()
        await server.linger()
        return result
    finally:
        await server.astop()


def _algorithm(name: str | None, params: list[str]) -> Any:
    if not params:
        return name
    parsed = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--param {item!r}: expected KEY=VALUE")
        parsed[key.strip()] = value.strip()
    return {"method": name or "FedAvg", "param": parsed}


def _transforms(value: str | None) -> Any:
    """The chain of ``--transforms``, built here so that a mistake is a usage error (exit 2)
    naming the flag, before the server binds; None leaves ``AGG_TRANSFORMS`` in charge."""
    if value is None:
        return None
    from sedna_core.errors import SednaError
    from sedna_core.jobs.federated._transforms import TransformChain

    try:
        chain = TransformChain.build(value)
    except (SednaError, ValueError, TypeError) as exc:
        # SystemExit(str) is the command line's usage error (see _algorithm above)
        raise SystemExit(f"--transforms {value!r}: {exc}") from None
    return chain.transforms


def _load_weights(path: str | None) -> Any:
    if not path:
        return None
    import zipfile

    import numpy as np

    from sedna_core.cli._checks import existing_file
    from sedna_core.cli.main import UsageError

    try:
        with np.load(existing_file(path, "--initial-weights"), allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise UsageError(f"--initial-weights {path!r}: an .npz of arrays is expected")
            return [data[k] for k in data.files]
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise UsageError(f"--initial-weights {path!r}: not a readable .npz file ({exc})") from None


def _printer(as_json: bool, exit_round: int) -> Any:
    def show(record: dict[str, Any]) -> None:
        if as_json:
            print(json.dumps(record, default=float), flush=True)
            return
        if "evaluation" in record and "clients" not in record:
            ev = record["evaluation"]
            metrics = "  ".join(f"{k} {v:.4g}" for k, v in ev["metrics"].items())
            print(f"  evaluation  clients {len(ev['clients'])}  {metrics}", flush=True)
            return
        metrics = "  ".join(f"{k} {v:.4g}" for k, v in record["metrics"].items())
        extra = ""
        if record["rejected"] or record["late"] or record["failed"]:
            extra = (
                f"  rejected {len(record['rejected'])}  late {record['late']}"
                f"  failed {len(record['failed'])}"
            )
        print(
            f"round {record['round']}/{exit_round}  clients {len(record['clients'])}  "
            f"samples {record['num_samples']}  {metrics}  {record['duration']:.2f}s{extra}",
            flush=True,
        )

    return show
