"""The FastAPI app: POST /recommend, POST /events, GET /health over one bundle and one event store.

The bundle is loaded once, in `lifespan`; the store is replayed into each user's recent items.
Routes are plain `def`: scoring is CPU work for the thread pool.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from seqrec import __version__
from seqrec.bundle import FORMAT_VERSION, bundle_dir, load_bundle
from seqrec.errors import SeqrecError
from seqrec.recommend import UnknownUserError
from seqrec.recommend import recommend as recommend_items
from seqrec.service.schemas import Events, EventsResponse, Health, Recommended, RecommendRequest, RecommendResponse
from seqrec.service.state import LiveHistories
from seqrec.service.store import EventStore

EVENTS_FILE = "events.sqlite"


def default_events_path(bundle_path: Path) -> Path:
    """events.sqlite next to the bundle folder (in the run folder when the bundle is RUN/bundle)."""
    return bundle_dir(bundle_path).resolve().parent / EVENTS_FILE


def _json(body: BaseModel) -> Response:
    return Response(body.model_dump_json(), media_type="application/json")


def create_app(bundle_path: Path, events_path: Path | None = None, token: str | None = None) -> FastAPI:
    """The service for the bundle at `bundle_path`; write endpoints need `token` when it is set."""
    events_path = Path(events_path) if events_path is not None else default_events_path(bundle_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bundle = load_bundle(bundle_path)
        store = EventStore(events_path)
        live = LiveHistories(bundle)
        for chunk in store.replay():
            live.apply(chunk)
        app.state.store, app.state.live = store, live
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="seqrec", version=__version__, lifespan=lifespan,
                  description="Next-item recommendations that follow a user's latest events.")

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if not token:
            return
        if authorization is None:
            raise HTTPException(401, "this endpoint needs a token: send the header 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(403, "wrong token")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        bad_json = [e for e in exc.errors() if e.get("type") == "json_invalid"]
        if bad_json:
            error = bad_json[0]
            where = error.get("ctx", {}).get("error", "")
            return JSONResponse({"detail": f"malformed JSON body: {where}".rstrip(": ")}, status_code=400)
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(SeqrecError)
    async def seqrec_error(request: Request, exc: SeqrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404 if isinstance(exc, UnknownUserError) else 422)

    # Routes return ready JSON: for a plain `def` route FastAPI would otherwise validate the
    # response model again in a second thread-pool hop. The schema still documents the model.
    @app.post("/recommend", response_model=RecommendResponse)
    def recommend(req: RecommendRequest, request: Request) -> Response:
        """Top-k items for a user (their stored history plus events) and/or explicit recent items."""
        live = request.app.state.live
        (answer,) = recommend_items(live.bundle, None if req.user is None else [req.user],
                                    None if req.items is None else [req.items], req.k, req.exclude_seen,
                                    histories=live)
        titles = answer.titles or [None] * len(answer.items)
        items = [Recommended(item=i, score=s, title=t) for i, s, t in zip(answer.items, answer.scores, titles,
                                                                           strict=True)]
        return _json(RecommendResponse(user=answer.user, items=items, unknown_items=answer.unknown_items))

    @app.post("/events", response_model=EventsResponse, dependencies=[Depends(require_token)])
    def events(body: Annotated[Events, Body()], request: Request) -> Response:
        """Store one event or a list of events, then apply them to the users' recent items."""
        stored = request.app.state.store.append([(e.user, e.item, e.timestamp) for e in body])
        unknown, new_users = request.app.state.live.apply(stored)
        return _json(EventsResponse(stored=len(stored), ids=[e.id for e in stored], unknown_items=unknown,
                                    new_users=new_users))

    @app.get("/health", response_model=Health)
    def health(request: Request) -> Health:
        bundle = request.app.state.live.bundle
        return Health(status="ok", model=bundle.model_name, num_users=bundle.num_users, num_items=bundle.num_items,
                      L=bundle.L, events=request.app.state.store.count(), format_version=FORMAT_VERSION,
                      seqrec_version=__version__)

    return app
