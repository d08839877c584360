"""Where domain validation meets the wire: domain errors become JSON:API 422 errors with the
contract's detail and pointer (§3), and unique-constraint races become the same 422 a
sequential request would have got."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import asyncpg

from accounts_api.domain.validation import TAKEN, Errors
from accounts_api.jsonapi.declaration import Resource, dasherize
from accounts_api.jsonapi.errors import ErrorList, ValidationFailed

BASE = "base"


def validation_errors(resource: Resource, errors: Errors) -> ErrorList:
    failures = []
    for key, message in errors.grouped():
        if key == BASE:
            failures.append(ValidationFailed(message, key=None, pointer="/data"))
            continue
        member = "relationships" if resource.relationship(dasherize(key)) else "attributes"
        failures.append(
            ValidationFailed(
                message, key=dasherize(key), pointer=f"/data/{member}/{dasherize(key)}"
            )
        )
    return ErrorList(failures)


def raise_invalid(resource: Resource, errors: Errors) -> None:
    if errors:
        raise validation_errors(resource, errors)


@contextmanager
def wire_errors(resource: Resource, constraints: Mapping[str, str]) -> Iterator[None]:
    """A unique violation (a concurrent write won the race) -> the `has already been taken`
    a sequential request would have got."""
    try:
        yield
    except asyncpg.UniqueViolationError as error:
        key = constraints.get(error.constraint_name or "")
        if key is None:
            raise
        errors = Errors()
        errors.add(key, TAKEN)
        raise validation_errors(resource, errors) from None
