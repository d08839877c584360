"""Routes that say what they serve: the engine's routes carry their resource and their kind,
so the OpenAPI document is built from the route table the app serves (openapi.py) and a new
route cannot go undescribed."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounts_api.jsonapi.declaration import Relationship, Resource


class RouteKind(enum.Enum):
    # GET the list, POST a new record
    COLLECTION = "collection"
    # GET, PATCH/PUT, DELETE one record
    MEMBER = "member"
    # GET, PATCH/PUT, DELETE /<path>/{key}/relationships/<relationship>
    RELATIONSHIP = "relationship"
    # GET /<path>/{key}/<relationship>: the related record
    RELATED = "related"
    # POST /<path>/{key}/<action>
    ACTION = "action"
    # GET /<parent path>/{key}/<path>: the list scoped to one parent record
    NESTED = "nested"


class ResourceRoute(Route):
    def __init__(
        self,
        path: str,
        endpoint: Callable[[Request], Awaitable[Response]],
        *,
        methods: Sequence[str],
        resource: Resource,
        kind: RouteKind,
        relationship: Relationship | None = None,
        action: str | None = None,
        parent: Resource | None = None,
    ):
        super().__init__(path, endpoint, methods=list(methods))
        self.resource = resource
        self.kind = kind
        self.relationship = relationship
        self.action = action
        self.parent = parent
