"""Declarations: attributes not always shown (a write-only password, a secret shown once) are
no sort, no filter, and a write-only one no sparse field."""

from __future__ import annotations

import pytest

from accounts_api.jsonapi.declaration import (
    Attribute,
    FilterFamily,
    Resource,
    Shown,
    ValueType,
)

HIDDEN = Resource(
    type="hidden",
    path="hidden",
    from_sql="hidden h",
    id_sql="h.id",
    attributes=(
        Attribute("name", ValueType.STRING, "h.name"),
        Attribute("password", ValueType.STRING, "h.password", shown=Shown.NEVER),
        Attribute("secret", ValueType.STRING, "h.secret", shown=Shown.ON_CREATE),
    ),
)


def test_only_attributes_always_shown_are_sortable() -> None:
    assert HIDDEN.sort_sql("name") == "h.name"
    assert HIDDEN.sort_sql("password") is None
    assert HIDDEN.sort_sql("secret") is None


def test_a_write_only_attribute_is_no_field() -> None:
    assert HIDDEN.field_keys == frozenset({"id", "name", "secret"})


@pytest.mark.parametrize("shown", [Shown.NEVER, Shown.ON_CREATE])
def test_an_attribute_not_always_shown_cannot_be_filtered(shown: Shown) -> None:
    with pytest.raises(ValueError, match="cannot be filtered"):
        Attribute("secret", ValueType.STRING, "h.secret", filter=FilterFamily.STRING, shown=shown)


@pytest.mark.parametrize(
    ("shown", "always", "on_create"),
    [(Shown.ALWAYS, True, True), (Shown.NEVER, False, False), (Shown.ON_CREATE, False, True)],
)
def test_rendered(shown: Shown, always: bool, on_create: bool) -> None:
    attribute = Attribute("x", ValueType.STRING, "h.x", shown=shown)

    assert attribute.rendered() is always
    assert attribute.rendered(created=True) is on_create
