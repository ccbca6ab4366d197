"""``sedna serve kb``: run the lifelong-learning knowledge base."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "kb",
        help="run the lifelong-learning knowledge base",
        description=(
            "Serve the knowledge base (Sedna's /knowledgebase/... REST paths). Settings not "
            "given here come from the environment: KnowledgeBaseServer (http://IP:PORT), "
            "KB_BIND_IP, KB_BIND_PORT, KnowledgeBasePath, KB_URL, SEDNA_TOKEN, SEDNA_TLS_CERT, "
            "SEDNA_TLS_KEY. The database schema is created or upgraded on start."
        ),
    )
    parser.add_argument("--host", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 9020; 0 picks a free one)")
    parser.add_argument("--data-dir", help="where the database file and artifacts live")
    parser.add_argument("--db-url", help="SQLAlchemy URL of the database (default: SQLite file)")
    parser.add_argument("--token", help="bearer token clients must send")
    parser.add_argument("--tls-cert", help="TLS certificate (PEM)")
    parser.add_argument("--tls-key", help="TLS private key (PEM)")
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=None,
        help="allow a non-loopback bind without a token",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from sedna_core.cli._checks import database_errors, writable_dir
    from sedna_core.cli.main import EXIT_INTERRUPTED
    from sedna_core.config.lifelong import KnowledgeBaseConfig
    from sedna_core.knowledge_base import KnowledgeBaseServer
    from sedna_core.log import configure_logging

    configure_logging()
    config = KnowledgeBaseConfig.from_env(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        db_url=args.db_url,
        token=args.token,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        insecure=args.insecure,
    )
    writable_dir(config.data_dir, "--data-dir")  # artifacts live there even with --db-url
    with database_errors():
        server = KnowledgeBaseServer(config)
    interrupted = []

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda s=sig: (interrupted.append(s), stop.set()))
        await server.start()
        print(f"sedna kb listening on {server.url} (data: {server.data_dir})", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())
    return EXIT_INTERRUPTED if signal.SIGINT in interrupted else 0
