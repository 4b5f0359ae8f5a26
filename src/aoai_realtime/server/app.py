"""A ready-made FastAPI app around :class:`RealtimeServer`: CORS from an explicit allow-list, the router,
the OpenAPI schema (``/openapi.json``, ``/docs``) and the browser client.

The browser client's files live in ``aoai_realtime/server/static`` (shipped in the wheel; ``web/`` at the
repository root is a link to that folder) and are served at ``/`` (demo page) and ``/static/``
(``realtime-call.js``, the ES module). Pass ``static_dir=None`` to serve no files.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

from .router import RealtimeServer

__all__ = ["STATIC_DIR", "create_app"]

STATIC_DIR = Path(__file__).parent / "static"


def create_app(
    server: RealtimeServer, *, static_dir: Path | None = STATIC_DIR, title: str = "aoai-realtime"
) -> FastAPI:
    """An app serving ``server``'s routes (and the browser client unless ``static_dir`` is ``None``).

    CORS: only ``server.settings.cors_origins`` may call from another origin; the reply echoes the matching
    origin with ``Vary: Origin`` (a comma-joined list is not a valid ``Access-Control-Allow-Origin``).
    With no origins listed, only same-origin pages can call.
    """
    app = FastAPI(title=title, lifespan=server.lifespan)
    origins = list(server.settings.cors_origins)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["Location", "Retry-After"],
            allow_credentials=True,
            max_age=600,
        )
    app.include_router(server.router)
    if static_dir is not None:
        app.mount("/", StaticFiles(directory=static_dir, html=True), name="static")
    return app
