"""Sedna's ``sedna.service.server``: the inference, aggregation and knowledge-base servers.

Each starts sedna-core's server. Unlike Sedna's, they bind 127.0.0.1 unless told otherwise
and refuse a non-loopback address without a token (``SEDNA_TOKEN``) unless
``SEDNA_INSECURE=1``.
"""

from __future__ import annotations

from typing import Any

from sedna_core.jobs.federated import AggregationServer as _AggregationServer

__all__ = ["AggregationServer", "InferenceServer", "KBServer"]

DEFAULT_WS_SIZE = 10 * 1024 * 1024


class AggregationServer(_AggregationServer):
    """Sedna's ``AggregationServer(aggregation, host, http_port, exit_round, participants_count,
    ws_size)``; ``start()`` serves the whole job.

    ``aggregation`` may be a ``ClassFactory`` alias (a Sedna-style aggregation). ``ws_size`` is
    accepted for compatibility: sedna-core sends weights in bounded binary chunks, so no
    frame has to hold a whole model.
    """

    def __init__(
        self,
        aggregation: Any = "FedAvg",
        host: str | None = None,
        http_port: int | None = None,
        exit_round: int | None = None,
        participants_count: int | None = None,
        ws_size: int = DEFAULT_WS_SIZE,
        **kwargs: Any,
    ) -> None:
        from sedna import _adapters
        from sedna.common.class_factory import ClassType

        self.ws_size = ws_size
        super().__init__(
            _adapters.resolve_spec(ClassType.FL_AGG, aggregation),
            host=host,
            http_port=http_port,
            # Sedna clamps exit_round to >= 1 (sedna-core's own API refuses such values)
            exit_round=None if exit_round is None else max(int(exit_round), 1),
            participants_count=participants_count,
            **kwargs,
        )


class _ModelAsEstimator:
    """Lets an object with Sedna's ``inference(data)`` serve as a big model."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def predict(self, data: Any, **kwargs: Any) -> Any:
        return self.model.inference(data, **kwargs)


class InferenceServer:
    """Sedna's ``InferenceServer(model, servername, host, http_port)``: serves
    ``POST /{servername}/predict`` with ``model.inference(data)``."""

    def __init__(
        self,
        model: Any,
        servername: str,
        host: str = "127.0.0.1",
        http_port: int = 8080,
        max_buffer_size: int | None = None,
        workers: int = 1,
    ) -> None:
        from sedna_core.jobs.joint_inference import BigModelService

        self.max_buffer_size = max_buffer_size
        self.service = BigModelService(
            _ModelAsEstimator(model), job_name=servername, host=host, port=http_port,
            workers=workers,
        )  # fmt: skip

    def start(self) -> Any:
        """Serve until SIGINT/SIGTERM."""
        return self.service.start()


class KBServer:
    """Sedna's ``KBServer(host, http_port=8080, save_dir="")``: sedna-core's knowledge base
    (Sedna's ``/knowledgebase`` paths; JSON index, no pickles)."""

    def __init__(
        self, host: str, http_port: int = 8080, save_dir: str = "", workers: int = 1
    ) -> None:
        from sedna_core.knowledge_base import KnowledgeBaseServer

        overrides: dict[str, Any] = {"host": host, "port": http_port}
        if save_dir:
            overrides["data_dir"] = save_dir
        self.workers = workers
        self.server = KnowledgeBaseServer(**overrides)

    def start(self) -> None:
        """Serve until SIGINT/SIGTERM."""
        self.server.run_forever()
