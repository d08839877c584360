"""The OpenAPI 3.1 document, built from the route table the app serves and the declarations
behind its routes (DESIGN.md: one declaration per resource drives the document).

The engine's routes say what they serve (routing.py); every other route must arrive described
in `described` (its path items, by path), or the build fails: a route cannot be served and
left out. Pure: no request, no database.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from starlette.routing import BaseRoute, Route

from accounts_api.jsonapi.declaration import (
    Attribute,
    FilterFamily,
    Relationship,
    Resource,
    Shown,
    ValueType,
)
from accounts_api.jsonapi.filters import MULTI_VALUE
from accounts_api.jsonapi.negotiation import MEDIA_TYPE
from accounts_api.jsonapi.query import DEFAULT_PAGE_SIZE, MAXIMUM_PAGE_SIZE
from accounts_api.jsonapi.routing import ResourceRoute, RouteKind

OPENAPI_VERSION = "3.1.0"
# a decimal as rendered (contract §0.2): no exponent, at least one fractional digit
DECIMAL_PATTERN = r"^-?[0-9]+\.[0-9]+$"
# how deep `include` paths are listed (a.b.c)
INCLUDE_DEPTH = 3

Operation = dict[str, Any]
# path -> lower-case method -> operation
PathItems = Mapping[str, Mapping[str, Operation]]


class UndescribedRoute(Exception):
    """A served route the document would leave out."""


def ref(kind: str, name: str) -> dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def openapi_path(path: str) -> str:
    """Starlette's `{key:path}` is OpenAPI's `{key}`."""
    return re.sub(r"\{(\w+):\w+\}", r"{\1}", path)


def served_methods(route: Route) -> set[str]:
    """The methods a route answers, in lower case. HEAD, which Starlette adds to every GET,
    is described by the GET."""
    return {method.lower() for method in route.methods or ()} - {"head"}


# -- error responses -------------------------------------------------------------------------

ERROR_RESPONSES: dict[int, str] = {
    400: "The query string or the body is malformed: an unknown filter, sort, field or "
    "include, a bad page value, a member the resource does not take (contract §0.4).",
    401: "The token is missing, invalid or expired, or the admin's IP is not allowed.",
    403: "The relationship cannot be changed.",
    404: "No such record (or the path does not exist).",
    406: "The Accept header does not allow application/vnd.api+json.",
    409: "Another request holds the record; retry after Retry-After seconds.",
    412: "If-Match names a version the record no longer has; read it again and retry.",
    413: "The request body is larger than the server takes.",
    414: "The query string is longer than the server takes.",
    415: "A write's Content-Type is not application/vnd.api+json.",
    422: "The record fails validation (code 100 per attribute, with a source pointer).",
    429: "Too many failed logins from this address or for this user; retry later.",
    431: "The request headers are larger than the server takes.",
    503: "The database is unavailable or overloaded; nothing was done, retry later.",
}
_RETRY_AFTER = {409, 429, 503}


def _error_response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_RESPONSES[status],
        "content": {MEDIA_TYPE: {"schema": ref("schemas", "errors")}},
    }
    if status in _RETRY_AFTER:
        response["headers"] = {"Retry-After": ref("headers", "Retry-After")}
    return response


def error_responses(*statuses: int) -> dict[str, Any]:
    """`responses` entries for error statuses, by reference."""
    return {str(status): ref("responses", str(status)) for status in sorted(statuses)}


ERROR_SCHEMA: dict[str, Any] = {
    "description": "A JSON:API error document (contract §0.4).",
    "type": "object",
    "required": ["errors"],
    "properties": {
        "errors": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["title", "detail", "code", "status"],
                "properties": {
                    "title": {"type": "string"},
                    "detail": {"type": "string"},
                    "code": {
                        "type": "string",
                        "description": "The contract's error code: 100 validation, 101-122 "
                        "request errors, else the HTTP status.",
                    },
                    "source": {
                        "type": "object",
                        "required": ["pointer"],
                        "properties": {"pointer": {"type": "string"}},
                        "additionalProperties": False,
                    },
                    "status": {"type": "string", "pattern": "^[1-5][0-9][0-9]$"},
                },
                "additionalProperties": False,
            },
        }
    },
    "additionalProperties": False,
}

# -- attribute values ------------------------------------------------------------------------


def _number(value: Decimal | int) -> int | float:
    return int(value) if value == int(value) else float(value)


def _bounds(attribute: Attribute) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if attribute.minimum is not None:
        key = "exclusiveMinimum" if attribute.exclusive_minimum else "minimum"
        bounds[key] = _number(attribute.minimum)
    if attribute.maximum is not None:
        bounds["maximum"] = _number(attribute.maximum)
    return bounds


def _choices(attribute: Attribute) -> list[object] | None:
    if attribute.choices is not None:
        return list(attribute.choices)
    if attribute.filter is FilterFamily.ENUM and attribute.enum_values:
        return list(attribute.enum_values)
    return None


def value_schema(attribute: Attribute, *, write: bool) -> dict[str, Any]:
    """The JSON Schema of an attribute's value as answered, or (`write`) as a write gives it."""
    schema: dict[str, Any]
    value_type = attribute.type
    if value_type is ValueType.DECIMAL:
        if write:
            # a JSON number is read losslessly; a numeric string is taken as well (contract §0.2)
            schema = {"anyOf": [{"type": "number", **_bounds(attribute)}, {"type": "string"}]}
        else:
            schema = {"type": "string", "pattern": DECIMAL_PATTERN}
    elif value_type is ValueType.INTEGER:
        schema = {"type": "integer", **_bounds(attribute)}
    elif value_type is ValueType.FLOAT:
        schema = {"type": "number", **_bounds(attribute)}
    elif value_type is ValueType.BOOLEAN:
        schema = {"type": "boolean"}
    elif value_type is ValueType.INT_ARRAY:
        items: dict[str, Any] = {"type": "array", "items": {"type": "integer"}}
        # contract §2.2: a write may give one id instead of a list
        schema = {"anyOf": [items, {"type": "integer"}]} if write else items
    elif value_type is ValueType.UUID:
        schema = {"type": "string", "format": "uuid"}
    elif value_type is ValueType.TIMESTAMP:
        schema = {"type": "string", "format": "date-time"}
    else:
        schema = {"type": "string"}
        if attribute.max_length is not None:
            schema["maxLength"] = attribute.max_length
    choices = _choices(attribute)
    if choices is not None:
        schema["enum"] = choices
    if attribute.nullable:
        if "anyOf" in schema:
            schema["anyOf"].append({"type": "null"})
        else:
            schema["type"] = [schema["type"], "null"]
            if "enum" in schema:
                schema["enum"] = [*schema["enum"], None]
    if attribute.default is not None and write:
        schema["default"] = (
            _number(attribute.default)
            if isinstance(attribute.default, Decimal)
            else attribute.default
        )
    description = _describe(attribute, write=write)
    if description:
        schema["description"] = description
    return schema


def _describe(attribute: Attribute, *, write: bool) -> str:
    notes = [attribute.description] if attribute.description else []
    if attribute.type is ValueType.DECIMAL and not write:
        notes.append("A decimal as a string.")
    if attribute.type is ValueType.DECIMAL and write and (_bounds(attribute)):
        low, high = attribute.minimum, attribute.maximum
        strict = attribute.exclusive_minimum
        if low is not None:
            notes.append(f"{'Greater than' if strict else 'At least'} {_number(low)}.")
        if high is not None:
            notes.append(f"At most {_number(high)}.")
    if attribute.shown is Shown.ON_CREATE and not write:
        notes.append("Shown once, in the answer to the create that stored it.")
    if attribute.shown is Shown.NEVER:
        notes.append("Write-only: never shown.")
    return " ".join(notes)


# -- resource objects and documents ----------------------------------------------------------


def _linkage(relationship: Relationship, *, write: bool) -> dict[str, Any]:
    types = [relationship.type, *relationship.extra_types] if write else [relationship.type]
    identifier = {
        "type": "object",
        "required": ["type", "id"],
        "properties": {
            "type": {"enum": types},
            # a write may give the id as a number
            "id": {"type": ["string", "integer"]} if write else {"type": "string"},
        },
    }
    return {"oneOf": [identifier, {"type": "null"}]}


_LINK = {"type": "string", "format": "uri"}
_RELATIONSHIP_LINKS = {
    "type": "object",
    "required": ["self", "related"],
    "properties": {"self": _LINK, "related": _LINK},
    "additionalProperties": False,
}


def resource_schema(resource: Resource) -> dict[str, Any]:
    """A resource object as answered. Attributes and relationships may be left out by a sparse
    fieldset (`fields[type]`), so none is required."""
    attributes = {
        attribute.key: value_schema(attribute, write=False)
        for attribute in resource.attributes
        if attribute.shown is not Shown.NEVER
    }
    relationships = {
        relationship.key: {
            "type": "object",
            "required": ["links", "data"],
            "properties": {
                "links": _RELATIONSHIP_LINKS,
                "data": _linkage(relationship, write=False),
            },
            "additionalProperties": False,
            **({"description": relationship.description} if relationship.description else {}),
        }
        for relationship in resource.relationships
    }
    properties: dict[str, Any] = {
        "id": {"type": "string"},
        "type": {"const": resource.type},
    }
    if resource.self_links:
        properties["links"] = {
            "type": "object",
            "required": ["self"],
            "properties": {"self": _LINK},
            "additionalProperties": False,
        }
    properties["attributes"] = {
        "type": "object",
        "properties": attributes,
        "additionalProperties": False,
    }
    if relationships:
        properties["relationships"] = {
            "type": "object",
            "properties": relationships,
            "additionalProperties": False,
        }
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["id", "type"],
        "properties": properties,
        "additionalProperties": False,
    }
    if resource.description:
        schema["description"] = resource.description
    return schema


def write_schema(resource: Resource, *, creating: bool) -> dict[str, Any]:
    """The body of a create (creatable members) or an update (updatable members, and the id)."""

    def takes(member: Attribute | Relationship) -> bool:
        return member.creatable if creating else member.updatable

    attributes = [a for a in resource.attributes if takes(a)]
    relationships = [r for r in resource.relationships if takes(r)]
    data: dict[str, Any] = {
        "type": "object",
        "required": ["type"] if creating else ["type", "id"],
        "properties": {"type": {"const": resource.type}},
    }
    if not creating:
        data["properties"]["id"] = {
            "type": ["string", "integer"],
            "description": "The id of the record, as in the URL.",
        }
    properties = {a.key: value_schema(a, write=True) for a in attributes}
    if not creating:
        # a client may send back the object it read: a read-only attribute equal to the stored
        # value is accepted and ignored (issue 8); a different value is refused (400, 105)
        for attribute in resource.attributes:
            if not attribute.updatable and attribute.readable:
                properties[attribute.key] = {
                    **value_schema(attribute, write=True),
                    "description": "Read-only: accepted only when equal to the stored value.",
                }
    data["properties"]["attributes"] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    for member in ("links", "meta"):
        data["properties"][member] = {"type": "object", "description": "Accepted and ignored."}
    required_attributes = [a.key for a in attributes if creating and a.required]
    if required_attributes:
        data["properties"]["attributes"]["required"] = required_attributes
        data["required"].append("attributes")
    if relationships:
        data["properties"]["relationships"] = {
            "type": "object",
            "properties": {
                r.key: {
                    "type": "object",
                    "required": ["data"],
                    "properties": {"data": _linkage(r, write=True)},
                }
                for r in relationships
            },
            "additionalProperties": False,
        }
        required_relationships = [r.key for r in relationships if creating and r.required]
        if required_relationships:
            data["properties"]["relationships"]["required"] = required_relationships
            data["required"].append("relationships")
    return {"type": "object", "required": ["data"], "properties": {"data": data}}


def _reachable(resource: Resource, registry: Mapping[str, Resource]) -> list[Resource]:
    """The resources an `include` can bring, in the order they are first met."""
    found: dict[str, Resource] = {}
    pending = [resource]
    while pending:
        current = pending.pop(0)
        for relationship in current.relationships:
            target = registry.get(relationship.resource_type or "")
            if target is not None and target.type not in found:
                found[target.type] = target
                pending.append(target)
    return list(found.values())


def include_paths(resource: Resource, registry: Mapping[str, Resource]) -> list[str]:
    """Valid `include` paths, INCLUDE_DEPTH segments deep at most."""
    paths: list[str] = []

    def walk(current: Resource, prefix: str, depth: int) -> None:
        if depth == INCLUDE_DEPTH:
            return
        for relationship in current.relationships:
            target = registry.get(relationship.resource_type or "")
            if target is None:
                continue
            path = f"{prefix}{relationship.key}"
            paths.append(path)
            walk(target, f"{path}.", depth + 1)

    walk(resource, "", 0)
    return paths


def _documents(resource: Resource, registry: Mapping[str, Resource]) -> dict[str, Any]:
    name = resource.type
    reachable = _reachable(resource, registry)
    included = (
        {"type": "array", "items": {"anyOf": [ref("schemas", r.type) for r in reachable]}}
        if reachable
        else None
    )
    single: dict[str, Any] = {
        "type": "object",
        "required": ["data"],
        "properties": {"data": ref("schemas", name)},
    }
    collection: dict[str, Any] = {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {
            "data": {"type": "array", "items": ref("schemas", name)},
            "meta": {
                "type": "object",
                "required": ["total-count"],
                "properties": {"total-count": {"type": "integer", "minimum": 0}},
            },
        },
    }
    if resource.paginated:
        collection["required"].append("links")
        collection["properties"]["links"] = {
            "type": "object",
            "required": ["first", "last"],
            "properties": {key: _LINK for key in ("first", "prev", "next", "last")},
            "additionalProperties": False,
        }
    if included is not None:
        single["properties"]["included"] = included
        collection["properties"]["included"] = included
    schemas = {
        name: resource_schema(resource),
        f"{name}.document": single,
        f"{name}.collection": collection,
    }
    if resource.writer.create is not None:
        schemas[f"{name}.create"] = write_schema(resource, creating=True)
    if resource.writer.update is not None:
        schemas[f"{name}.update"] = write_schema(resource, creating=False)
    return schemas


# -- query parameters ------------------------------------------------------------------------

_PREDICATES = {
    "eq": "equals",
    "not_eq": "differs from",
    "gt": "is greater than",
    "gteq": "is at least",
    "lt": "is less than",
    "lteq": "is at most",
    "in": "is one of (comma-separated)",
    "not_in": "is none of (comma-separated)",
    "cont": "contains, ignoring case",
    "start": "starts with, ignoring case",
    "end": "ends with, ignoring case",
    "cont_any": "contains any of (comma-separated), ignoring case",
}
_FAMILY_VALUES = {
    FilterFamily.STRING: "text",
    FilterFamily.NUMBER: "a number",
    FilterFamily.UUID: "a UUID",
    FilterFamily.FOREIGN_KEY: "an id",
    FilterFamily.BOOLEAN: "true or false (also t, f, 1, 0)",
    FilterFamily.DATETIME: "an ISO 8601 time, UTC when it names no zone",
    FilterFamily.ENUM: "one of the listed values",
}


def _query(name: str, description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema, **extra}


def _csv_of(values: Sequence[str]) -> dict[str, Any]:
    # a comma-separated list: an array, not exploded
    return {"type": "array", "items": {"type": "string", "enum": list(values)}}


def filter_parameters(resource: Resource, max_values: int) -> list[dict[str, Any]]:
    """`filter[...]` of a list (contract §2.5): plain, relationship and ransack filters."""
    many = f"At most {max_values} values."
    parameters = [_query("filter[id]", f"The id is one of (comma-separated). {many}", _string())]
    for name in resource.plain_filters:
        parameters.append(
            _query(f"filter[{name}]", f"{name} is one of (comma-separated). {many}", _string())
        )
    for relationship in resource.relationships:
        if relationship.filterable:
            parameters.append(
                _query(
                    f"filter[{relationship.name}.id]",
                    f"The {relationship.key} id is one of (comma-separated). {many}",
                    _string(),
                )
            )
    seen: set[str] = {p["name"] for p in parameters}
    for attribute in (*resource.attributes, *resource.filter_only):
        family = attribute.filter
        if family is None:
            continue
        for predicate in family.predicates:
            name = f"filter[{attribute.name}_{predicate}]"
            if name in seen:
                continue
            seen.add(name)
            schema = _string()
            if (
                family is FilterFamily.ENUM
                and predicate not in MULTI_VALUE
                and attribute.enum_values
            ):
                schema = {"type": "string", "enum": list(attribute.enum_values)}
            description = f"{attribute.key} {_PREDICATES[predicate]}: {_FAMILY_VALUES[family]}." + (
                f" {many}" if predicate in MULTI_VALUE else ""
            )
            if family is FilterFamily.ENUM and attribute.enum_values:
                description += f" Values: {', '.join(attribute.enum_values)}."
            parameters.append(_query(name, description, schema))
    return parameters


def _string() -> dict[str, Any]:
    return {"type": "string"}


def sort_names(resource: Resource) -> list[str]:
    """The fields a list sorts by, as a client writes them."""
    names = ["id"] if resource.id_sortable else []
    names += [a.key for a in resource.attributes if a.sortable and a.readable]
    names += [name.replace("_", "-") for name in resource.extra_sorts]
    return names


def _sort_parameter(resource: Resource) -> dict[str, Any]:
    names = sort_names(resource)
    description = "Sort fields, comma-separated; a leading `-` sorts descending."
    if resource.sort_ignored:
        description += " Checked but not applied (contract §5.5)."
    return _query(
        "sort",
        description,
        _csv_of([*names, *(f"-{name}" for name in names)]),
        style="form",
        explode=False,
    )


def _shape_parameters(resource: Resource, registry: Mapping[str, Resource]) -> list[dict[str, Any]]:
    """`include` and `fields[type]`, which every answer with a document takes."""
    parameters = []
    paths = include_paths(resource, registry)
    if paths:
        parameters.append(
            _query(
                "include",
                "Related records to add under `included`, comma-separated paths.",
                _csv_of(paths),
                style="form",
                explode=False,
            )
        )
    others = [r for r in _reachable(resource, registry) if r.type != resource.type]
    for shaped in (resource, *others):
        parameters.append(
            _query(
                f"fields[{shaped.type}]",
                f"Only these fields of {shaped.type} (a sparse fieldset).",
                # an empty fieldset is refused (400, code 104), as in Yeti
                {**_csv_of(sorted(shaped.field_keys)), "minItems": 1},
                style="form",
                explode=False,
            )
        )
    return parameters


def _list_parameters(
    resource: Resource, registry: Mapping[str, Resource], max_values: int
) -> list[dict[str, Any]]:
    parameters = filter_parameters(resource, max_values)
    parameters.append(_sort_parameter(resource))
    parameters += _shape_parameters(resource, registry)
    if resource.paginated:
        parameters.append(ref("parameters", "page-number"))
        parameters.append(ref("parameters", "page-size"))
    return parameters


def _key_parameter(resource: Resource, name: str = "key") -> dict[str, Any]:
    if resource.integer_keys:
        schema: dict[str, Any] = {"type": "integer"}
        description = f"The id of the {resource.type} record."
    else:
        schema = {"type": "string"}
        description = f"The id of the {resource.type} record; it may contain `/`."
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


# -- operations ------------------------------------------------------------------------------

_COMMON_ERRORS = (400, 401, 406, 414, 431, 503)
_WRITE_ERRORS = (409, 413, 415, 422)


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {MEDIA_TYPE: {"schema": schema}}


def _answer(description: str, schema: dict[str, Any], **headers: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": _content(schema)}
    if headers:
        answer["headers"] = headers
    return answer


def _write_headers(resource: Resource, *, versioned_record: bool) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [ref("parameters", "Idempotency-Key")]
    if versioned_record and resource.versioned:
        parameters.append(ref("parameters", "If-Match"))
    return parameters


def _operation_id(method: str, path: str) -> str:
    return method + re.sub(r"[^A-Za-z0-9]+", "_", path.removeprefix("/api/rest/admin"))


def resource_operations(
    route: ResourceRoute, registry: Mapping[str, Resource], max_values: int
) -> dict[str, Operation]:
    """The operations of one engine route, by lower-case method."""
    resource, kind = route.resource, route.kind
    name = resource.type
    operations: dict[str, Operation] = {}
    etag = {"ETag": ref("headers", "ETag")}
    for method in sorted(served_methods(route)):
        operation: Operation
        errors = set(_COMMON_ERRORS)
        if method != "get":
            errors |= set(_WRITE_ERRORS)
        if method == "delete":
            errors -= {413, 415}
        if kind is RouteKind.COLLECTION and method == "get":
            operation = {
                "summary": f"List {name}",
                "parameters": _list_parameters(resource, registry, max_values),
                "responses": {
                    "200": _answer(
                        f"A page of {name}.", ref("schemas", f"{name}.collection"), **etag
                    )
                },
            }
        elif kind is RouteKind.COLLECTION:
            operation = {
                "summary": f"Create a record of {name}",
                "parameters": [
                    *_write_headers(resource, versioned_record=False),
                    *_shape_parameters(resource, registry),
                ],
                "requestBody": {
                    "required": True,
                    "content": _content(ref("schemas", f"{name}.create")),
                },
                "responses": {
                    "201": _answer(
                        "Created.",
                        ref("schemas", f"{name}.document"),
                        Location=ref("headers", "Location"),
                        **etag,
                    )
                },
            }
        elif kind is RouteKind.NESTED:
            assert route.parent is not None
            errors.add(404)
            operation = {
                "summary": f"List the {name} of one record of {route.parent.type}",
                "parameters": [
                    _key_parameter(route.parent),
                    *_list_parameters(resource, registry, max_values),
                ],
                "responses": {
                    "200": _answer(
                        f"A page of {name}.", ref("schemas", f"{name}.collection"), **etag
                    )
                },
            }
        elif kind is RouteKind.MEMBER:
            errors.add(404)
            shape = _shape_parameters(resource, registry)
            if method == "get":
                operation = {
                    "summary": f"Show a record of {name}",
                    "parameters": shape,
                    "responses": {
                        "200": _answer("The record.", ref("schemas", f"{name}.document"), **etag)
                    },
                }
            elif method in ("patch", "put"):
                if resource.versioned:
                    errors.add(412)
                operation = {
                    "summary": f"Update a record of {name}: only the given members change",
                    "parameters": [*_write_headers(resource, versioned_record=True), *shape],
                    "requestBody": {
                        "required": True,
                        "content": _content(ref("schemas", f"{name}.update")),
                    },
                    "responses": {
                        "200": _answer(
                            "The record as stored.", ref("schemas", f"{name}.document"), **etag
                        )
                    },
                }
            else:
                if resource.versioned:
                    errors.add(412)
                operation = {
                    "summary": f"Delete a record of {name}",
                    "parameters": _write_headers(resource, versioned_record=True),
                    "responses": {"204": {"description": "Deleted."}},
                }
            operation["parameters"] = [_key_parameter(resource), *operation["parameters"]]
        elif kind is RouteKind.RELATIONSHIP:
            relationship = route.relationship
            assert relationship is not None
            errors.add(404)
            linkage = _linkage(relationship, write=method != "get")
            if method == "get":
                operation = {
                    "summary": f"Show the {relationship.key} linkage of a record of {name}",
                    "parameters": [],
                    "responses": {
                        "200": _answer(
                            "The linkage.",
                            {
                                "type": "object",
                                "required": ["data", "links"],
                                "properties": {"data": linkage, "links": _RELATIONSHIP_LINKS},
                            },
                            **etag,
                        )
                    },
                }
            else:
                changeable = resource.writer.update is not None and relationship.updatable
                if not changeable:
                    errors = {401, 403, 406} | ({415} if method != "delete" else set())
                elif resource.versioned:
                    errors.add(412)
                verb = "Clear" if method == "delete" else "Set"
                operation = {
                    "summary": f"{verb} the {relationship.key} of a record of {name}"
                    + ("" if changeable else " (not allowed: it cannot change)"),
                    "parameters": _write_headers(resource, versioned_record=True)
                    if changeable
                    else [],
                    "responses": {"204": {"description": "Changed."}} if changeable else {},
                }
                if method != "delete":
                    operation["requestBody"] = {
                        "required": True,
                        "content": _content(
                            {
                                "type": "object",
                                "required": ["data"],
                                "properties": {"data": linkage},
                            }
                        ),
                    }
            operation["parameters"] = [_key_parameter(resource), *operation["parameters"]]
        elif kind is RouteKind.RELATED:
            relationship = route.relationship
            assert relationship is not None and relationship.resource_type is not None
            related = registry[relationship.resource_type]
            errors.add(404)
            operation = {
                "summary": f"Show the {relationship.key} of a record of {name}",
                "parameters": [_key_parameter(resource), *_shape_parameters(related, registry)],
                "responses": {
                    "200": _answer(
                        f"The related record of {related.type}, or null.",
                        {
                            "anyOf": [
                                ref("schemas", f"{related.type}.document"),
                                {
                                    "type": "object",
                                    "required": ["data"],
                                    "properties": {"data": {"type": "null"}},
                                },
                            ]
                        },
                        **etag,
                    )
                },
            }
        else:
            errors |= {404}
            errors -= {413, 415}
            operation = {
                "summary": f"{(route.action or '').capitalize()} a record of {name}",
                "parameters": [
                    _key_parameter(resource),
                    *_write_headers(resource, versioned_record=False),
                    *_shape_parameters(resource, registry),
                ],
                "responses": {
                    "200": _answer(
                        "The record after the operation.",
                        ref("schemas", f"{name}.document"),
                        **etag,
                    )
                },
            }
        operation["operationId"] = _operation_id(method, openapi_path(route.path))
        operation["tags"] = [name]
        operation["responses"].update(error_responses(*errors))
        operations[method] = operation
    return operations


# -- the document ----------------------------------------------------------------------------


def components(registry: Mapping[str, Resource], resources: Iterable[Resource]) -> dict[str, Any]:
    schemas: dict[str, Any] = {"errors": ERROR_SCHEMA}
    for resource in (*registry.values(), *resources):
        for name, schema in _documents(resource, registry).items():
            schemas.setdefault(name, schema)
    return {
        "schemas": dict(sorted(schemas.items())),
        "responses": {str(status): _error_response(status) for status in ERROR_RESPONSES},
        "parameters": {
            "page-number": _query(
                "page[number]",
                "The page, from 1.",
                {"type": "integer", "minimum": 1, "default": 1},
            ),
            "page-size": _query(
                "page[size]",
                "Records per page.",
                {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAXIMUM_PAGE_SIZE,
                    "default": DEFAULT_PAGE_SIZE,
                },
            ),
            "Idempotency-Key": {
                "name": "Idempotency-Key",
                "in": "header",
                "description": "A retry with the same key within the server's window gets the "
                "first answer again instead of writing twice.",
                "schema": {"type": "string", "maxLength": 255},
            },
            "If-Match": {
                "name": "If-Match",
                "in": "header",
                "description": "Write only if the record still has this ETag (from a GET), "
                "else 412.",
                "schema": {"type": "string"},
            },
        },
        "headers": {
            "ETag": {
                "description": "Strong for a versioned record answered whole, else weak (of "
                "the body); If-None-Match on a GET answers 304.",
                "schema": {"type": "string"},
            },
            "Location": {"description": "The created record's URL.", "schema": _LINK},
            "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}},
        },
    }


def build_document(
    routes: Iterable[BaseRoute],
    registry: Mapping[str, Resource],
    *,
    info: Mapping[str, Any],
    described: PathItems,
    security_schemes: Mapping[str, Any],
    max_filter_values: int,
) -> dict[str, Any]:
    """The document for a route table: the engine's routes from their declarations, the others
    from `described`. A route in neither raises UndescribedRoute."""
    paths: dict[str, dict[str, Operation]] = {}
    resources: list[Resource] = []
    for route in routes:
        if not isinstance(route, Route):
            raise UndescribedRoute(f"{route!r} is not a route the document can describe")
        path = openapi_path(route.path)
        if isinstance(route, ResourceRoute):
            resources.append(route.resource)
            operations = resource_operations(route, registry, max_filter_values)
        elif path in described:
            operations = dict(described[path])
            missing = served_methods(route) - set(operations)
            if missing:
                raise UndescribedRoute(f"{', '.join(sorted(missing))} {path} is not described")
            operations = {m: op for m, op in operations.items() if m in served_methods(route)}
        else:
            raise UndescribedRoute(f"{path} is served but not described")
        item = paths.setdefault(path, {})
        for method, operation in operations.items():
            item[method] = operation
    return {
        "openapi": OPENAPI_VERSION,
        "info": dict(info),
        "security": [{name: []} for name in security_schemes],
        "tags": sorted(
            (
                {"name": r.type, **({"description": r.description} if r.description else {})}
                for r in {r.type: r for r in resources}.values()
            ),
            key=lambda tag: tag["name"],
        ),
        "paths": paths,
        "components": {
            **components(registry, resources),
            "securitySchemes": dict(security_schemes),
        },
    }
