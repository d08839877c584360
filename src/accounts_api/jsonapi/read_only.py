"""Read-only attributes sent back on update (issue 8): allowed when they say what a GET says.

JSON:API clients (jsonapi-requests' `save()`, devour, jsona) fetch a resource object and send
it back whole. Its read-only attributes (an account's `balance`, `currency`) then carry the
values the client read. Such a value is accepted and ignored; a different one is refused as
Yeti refuses every read-only key (contract §3.3: 105 `<key> is not allowed.`, the first
offender in body order, nothing saved).

"The same" is judged as the API renders the stored value: decimals numerically (a client may
send `0`, `"0.00"` or `"0.0"` for a balance rendered `"0.0"`), everything else as the JSON
value a GET renders (timestamps as their rendered strings, `true` is not `1`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from accounts_api import numerals
from accounts_api.jsonapi.declaration import Resource, ValueType
from accounts_api.jsonapi.document import Row, render_value
from accounts_api.jsonapi.errors import ParamNotAllowed


def check_unchanged(resource: Resource, sent: Mapping[str, Any], row: Row) -> None:
    """Raise 105 for the first key in `sent` (key as sent -> value) whose value is not the
    stored one in `row` (selected by endpoints.select_sql: id, then attributes in order)."""
    for key, value in sent.items():
        attribute = resource.attribute(key)
        assert attribute is not None and attribute.readable  # body.py kept only these
        stored = row[1 + resource.attributes.index(attribute)]
        if not _same(attribute.type, value, stored):
            raise ParamNotAllowed(key)


def _same(value_type: ValueType, sent: Any, stored: Any) -> bool:
    if value_type is ValueType.DECIMAL and stored is not None:
        try:
            return bool(numerals.read_number(sent) == stored)
        except ValueError:  # not a number, or one no column holds
            return False
    return _same_json(sent, render_value(value_type, stored))


def _same_json(sent: Any, rendered: Any) -> bool:
    """JSON equality: numbers by value (`5` and `5.0`), booleans only as booleans."""
    if isinstance(sent, bool) or isinstance(rendered, bool):
        return type(sent) is type(rendered) and sent == rendered
    if isinstance(sent, int | Decimal) and isinstance(rendered, int | Decimal):
        return sent == rendered
    if isinstance(sent, list) and isinstance(rendered, list):
        return len(sent) == len(rendered) and all(map(_same_json, sent, rendered))
    return type(sent) is type(rendered) and bool(sent == rendered)
