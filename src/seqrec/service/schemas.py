"""Request and response bodies of the HTTP service (pydantic), with their bounds."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    StringConstraints,
    model_validator,
)

MAX_K = 1000                    # also capped at the bundle's num_items
MAX_ITEMS = 1000                # recent items in one /recommend request
MAX_EVENTS = 10_000             # events in one /events request

Int64 = Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)]
ExternalId = Int64 | Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Body):
    user: ExternalId | None = Field(None, description="External user id; unknown users need `items` or events.")
    items: Annotated[list[ExternalId], Field(max_length=MAX_ITEMS)] | None = Field(
        None, description="Recent item ids, oldest first; replaces the user's stored recent items.")
    k: int = Field(10, ge=1, le=MAX_K, description="How many items (at most the catalogue size).")
    exclude_seen: bool = Field(True, description="Leave out items the user has already interacted with.")

    @model_validator(mode="after")
    def _user_or_items(self) -> RecommendRequest:
        if self.user is None and not self.items:
            raise ValueError("give a user, a non-empty list of recent items, or both")
        return self


class Recommended(BaseModel):
    item: Any
    score: float
    title: str | None = None


class RecommendResponse(BaseModel):
    user: Any = None
    items: list[Recommended]
    unknown_items: list[Any] = Field(default_factory=list, description="Given item ids the model does not know.")


class Event(_Body):
    user: ExternalId
    item: ExternalId
    timestamp: Int64


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, dict) else value


# One event object or a list of them; either way the route sees a list.
Events = Annotated[list[Event], BeforeValidator(_as_list), Field(min_length=1, max_length=MAX_EVENTS)]


class EventsResponse(BaseModel):
    stored: int
    ids: list[int] = Field(description="Store ids of the events, in request order.")
    unknown_items: list[Any] = Field(description="Item ids the model does not know: stored, not used for scoring.")
    new_users: list[Any] = Field(description="User ids the bundle does not know: they get sequence-based items.")


class Health(BaseModel):
    status: str
    model: str
    num_users: int
    num_items: int
    L: int
    events: int
    format_version: int
    seqrec_version: str
