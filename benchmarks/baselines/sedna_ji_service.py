"""Sedna's big-model service re-created for comparison ("Sedna's way").

Mirrors ``sedna.service.server.inference.InferenceServer`` as used by ``BigModelService``
(reference §2.1, §10.2; kubeedge/sedna ``lib/sedna/service/server/{base,inference}.py``):
FastAPI + uvicorn in a thread (signal handlers off, keep-alive 300 s, ``log_level="info"`` so
uvicorn writes an access-log line per request, CORS allow-all), ``POST /{name}/predict`` taking
the pydantic body ``{"data": List, "callback": str | None}`` in a synchronous route (FastAPI runs
it in its thread pool) and answering through ``response_model=ServePredictResult``
(``{"result": List}``); ``GET /{name}`` lists the routes. Benchmark use only: no
authentication, JSON lists of floats, as Sedna does it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["SednaInferenceServer"]


class SednaInferenceServer:
    """``InferenceServer(model, servername, host, http_port)`` with Sedna's routes.

    ``predict`` is the cloud model's inference: it receives the JSON list and returns something
    JSON-serialisable (Sedna's examples return lists).
    """

    def __init__(
        self,
        predict: Callable[[list[Any]], Any],
        servername: str = "sedna",
        host: str = "127.0.0.1",
        http_port: int = 0,
    ) -> None:
        self.predict = predict
        self.servername = servername
        self.host = host
        self.http_port = http_port or _free_port(host)
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}/{self.servername}"

    def _app(self) -> Any:
        from fastapi import FastAPI
        from fastapi.middleware.cors import CORSMiddleware
        from fastapi.responses import JSONResponse
        from fastapi.routing import APIRoute
        from pydantic import BaseModel

        class InferenceItem(BaseModel):
            data: list  # type: ignore[type-arg]
            callback: str | None = None

        class ServePredictResult(BaseModel):
            result: list  # type: ignore[type-arg]

        def model_info() -> dict[str, Any]:
            return {"infos": [{"path": r.path, "name": r.name} for r in app.routes]}

        def predict(data: InferenceItem) -> ServePredictResult:
            return ServePredictResult(result=self.predict(data.data))

        # annotations are strings here (postponed evaluation): give FastAPI the real models
        predict.__annotations__.update({"data": InferenceItem, "return": ServePredictResult})

        app = FastAPI(
            routes=[
                APIRoute(f"/{self.servername}", model_info, response_class=JSONResponse),
                APIRoute(
                    f"/{self.servername}/predict",
                    predict,
                    response_model=ServePredictResult,
                    methods=["POST"],
                    response_class=JSONResponse,
                ),
            ]
        )
        app.add_middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
        return app

    def start(self) -> str:
        """Serve in a daemon thread (as Sedna does); returns the service URL once it listens."""
        import uvicorn

        config = uvicorn.Config(
            self._app(),
            host=self.host,
            port=self.http_port,
            timeout_keep_alive=300,
            log_level="info",  # Sedna's setting: an access-log line per request
        )
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # Sedna disables them too
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:  # bounded by the thread being alive
            if not self._thread.is_alive():
                raise RuntimeError("the uvicorn server failed to start")
            self._thread.join(0.01)
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
