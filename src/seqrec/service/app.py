"""The FastAPI app: POST /recommend, POST /events, GET /health over one bundle and one event store.

The bundle is loaded once, in `lifespan`; the store is replayed into each user's recent items.
Before each recommendation and after each append the service applies the events stored since
(by it or by another replica on the same file), so replicas sharing one store agree.
Routes are plain `def`: scoring is CPU work for the thread pool.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import Body, Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from seqrec import __version__
from seqrec.bundle import FORMAT_VERSION, bundle_dir, load_bundle
from seqrec.errors import SeqrecError
from seqrec.recommend import UnknownUserError
from seqrec.recommend import recommend as recommend_items
from seqrec.service.guards import MAX_BODY_BYTES, BodyLimit, StrictJSONRoute, validation_errors
from seqrec.service.schemas import Events, EventsResponse, Health, Recommended, RecommendRequest, RecommendResponse
from seqrec.service.state import LiveHistories
from seqrec.service.store import EventStore, StoreUnavailableError

EVENTS_FILE = "events.sqlite"
STATUS = {UnknownUserError: 404, StoreUnavailableError: 503}        # other SeqrecErrors: 422


def default_events_path(bundle_path: Path) -> Path:
    """events.sqlite next to the bundle folder (in the run folder when the bundle is RUN/bundle)."""
    return bundle_dir(bundle_path).resolve().parent / EVENTS_FILE


def open_store(bundle_path: Path, events_path: Path | None = None) -> EventStore:
    """The bundle's event store (default: `default_events_path`), checked writable and stamped with the bundle."""
    return EventStore(default_events_path(bundle_path) if events_path is None else Path(events_path), bundle_path)


def _json(body: BaseModel) -> Response:
    return Response(body.model_dump_json(), media_type="application/json")


def _check_options(token: str | None, protect_recommend: bool, max_body_bytes: int) -> None:
    if token is not None and not token.strip():
        raise SeqrecError("the token is empty; give a real token, or none to leave POST /events open")
    if protect_recommend and token is None:
        raise SeqrecError("protecting POST /recommend needs a token (--token or SEQREC_TOKEN)")
    if max_body_bytes < 1:
        raise SeqrecError(f"the body size limit must be at least 1 byte, got {max_body_bytes}")


def create_app(bundle_path: Path, events_path: Path | None = None, token: str | None = None, *,
               protect_recommend: bool = False, max_body_bytes: int | None = None) -> FastAPI:
    """The service for the bundle at `bundle_path`.

    POST /events needs `token` when it is set, and so does POST /recommend with `protect_recommend`
    (it reveals a user's history). Request bodies over `max_body_bytes` (None: 2 MiB) get 413.
    """
    max_body_bytes = MAX_BODY_BYTES if max_body_bytes is None else max_body_bytes
    _check_options(token, protect_recommend, max_body_bytes)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bundle = load_bundle(bundle_path)
        store = open_store(bundle_path, events_path)
        live = LiveHistories(bundle)
        store.catch_up(live.apply)
        app.state.store, app.state.live = store, live
        try:
            yield
        finally:
            store.close()

    app = FastAPI(title="seqrec", version=__version__, lifespan=lifespan,
                  description="Next-item recommendations that follow a user's latest events.")
    app.router.route_class = StrictJSONRoute
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)

    def require_token(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is None:
            return
        if authorization is None:
            raise HTTPException(401, "this endpoint needs a token: send the header 'Authorization: Bearer TOKEN'",
                                headers={"WWW-Authenticate": "Bearer"})
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            raise HTTPException(403, "wrong token")

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_errors(exc)

    @app.exception_handler(SeqrecError)
    async def seqrec_error(request: Request, exc: SeqrecError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=STATUS.get(type(exc), 422))

    # Routes return ready JSON: for a plain `def` route FastAPI would otherwise validate the
    # response model again in a second thread-pool hop. The schema still documents the model.
    @app.post("/recommend", response_model=RecommendResponse,
              dependencies=[Depends(require_token)] if protect_recommend else [])
    def recommend(req: RecommendRequest, request: Request) -> Response:
        """Top-k items for a user (their stored history plus events) and/or explicit recent items."""
        store, live = request.app.state.store, request.app.state.live
        store.catch_up(live.apply)                          # events other replicas stored
        (answer,) = recommend_items(live.bundle, None if req.user is None else [req.user],
                                    None if req.items is None else [req.items], req.k, req.exclude_seen,
                                    histories=live)
        titles = answer.titles or [None] * len(answer.items)
        items = [Recommended(item=i, score=s, title=t) for i, s, t in zip(answer.items, answer.scores, titles,
                                                                           strict=True)]
        return _json(RecommendResponse(user=answer.user, items=items, unknown_items=answer.unknown_items))

    @app.post("/events", response_model=EventsResponse, dependencies=[Depends(require_token)],
              responses={503: {"description": "The event store cannot take events; nothing was acknowledged."}})
    def events(body: Annotated[Events, Body()], request: Request) -> Response:
        """Store one event or a list of events, then apply them to the users' recent items."""
        store, live = request.app.state.store, request.app.state.live
        rows = [(e.user, e.item, e.timestamp) for e in body]
        ids = store.append(rows)
        store.catch_up(live.apply)                          # these events, and any another replica stored
        unknown, new_users = live.unknown(rows)
        return _json(EventsResponse(stored=len(ids), ids=ids, unknown_items=unknown, new_users=new_users))

    @app.get("/health", response_model=Health,
             responses={503: {"description": "Unhealthy: the detail says why (e.g. the event store is gone)."}})
    def health(request: Request) -> Response:
        store, bundle = request.app.state.store, request.app.state.live.bundle
        problem = store.problem()
        if problem:
            return JSONResponse({"status": "unhealthy", "detail": problem}, status_code=503)
        return _json(Health(status="ok", model=bundle.model_name, num_users=bundle.num_users,
                            num_items=bundle.num_items, L=bundle.L, events=store.count(),
                            format_version=FORMAT_VERSION, seqrec_version=__version__))

    return app
