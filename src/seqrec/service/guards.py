"""What every request passes through: a body size limit, JSON without NaN or Infinity, and
validation errors that never echo the request back (a 50 MB body or a NaN stays on the client)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 2 * 1024 * 1024
ERROR_FIELDS = ("loc", "msg", "type")          # pydantic's `input` and `ctx` may hold the request's values


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, by its Content-Length or, without one, as it streams in."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.detail = f"request body too large: the limit is {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            return await JSONResponse({"detail": self.detail}, 413)(scope, receive, send)
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise HTTPException(413, self.detail)      # FastAPI re-raises it from the body read
            return message

        await self.app(scope, limited, send)


def _no_constant(name: str) -> NoReturn:
    raise HTTPException(422, "NaN and Infinity are not valid JSON")


class _StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_constant=_no_constant)
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body may not hold NaN, Infinity or -Infinity (Python's json accepts them)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictJSONRequest(request.scope, request.receive))

        return strict


def validation_errors(exc: RequestValidationError) -> JSONResponse:
    """400 for a body that is not JSON; else 422 with each error's location, message and type, not its input."""
    errors = exc.errors()
    bad_json = [e for e in errors if e.get("type") == "json_invalid"]
    if bad_json:
        where = bad_json[0].get("ctx", {}).get("error", "")
        return JSONResponse({"detail": f"malformed JSON body: {where}".rstrip(": ")}, status_code=400)
    return JSONResponse({"detail": [{key: e[key] for key in ERROR_FIELDS if key in e} for e in errors]},
                        status_code=422)
