"""Keys and names: the pure parts of tenancy."""

from __future__ import annotations

import pytest

from threadline.domain import tenancy
from threadline.domain.errors import InvalidInput, Unauthorized


class _NoRepo:
    """Answers no key: authenticate must reject malformed keys before asking storage."""

    def principal_for_key_hash(self, key_hash: bytes) -> None:
        raise AssertionError("storage must not be asked for a malformed key")


@pytest.mark.unit
@pytest.mark.parametrize("key", [None, "", "sk-live-123", "tl_" + "x" * 300])
def test_malformed_keys_are_rejected_without_a_lookup(key: str | None) -> None:
    # Given a missing or malformed key / When authenticating / Then it is Unauthorized
    with pytest.raises(Unauthorized):
        tenancy.authenticate(_NoRepo(), key)  # type: ignore[arg-type]


@pytest.mark.unit
def test_key_hash_is_stable_and_distinct() -> None:
    assert tenancy.hash_api_key("tl_a_b") == tenancy.hash_api_key("tl_a_b")
    assert tenancy.hash_api_key("tl_a_b") != tenancy.hash_api_key("tl_a_c")
    assert len(tenancy.hash_api_key("tl_a_b")) == 32


@pytest.mark.unit
def test_defaults_are_discovery_and_troubleshooting() -> None:
    assert [c.name for c in tenancy.DEFAULT_CATEGORIES] == ["Discovery", "Troubleshooting"]
    assert all(c.description for c in tenancy.DEFAULT_CATEGORIES)


@pytest.mark.unit
@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_team_names_are_validated(name: str) -> None:
    class Repo:
        def create_team(self, name: str) -> None:
            raise AssertionError("must not store an invalid name")

    with pytest.raises(InvalidInput):
        tenancy.create_team(Repo(), name)  # type: ignore[arg-type]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("typed", "origin"),
    [
        ("https://docs.example.com", "https://docs.example.com"),
        ("HTTPS://Docs.Example.COM/", "https://docs.example.com"),
        ("https://docs.example.com:443", "https://docs.example.com"),
        ("http://localhost:5173", "http://localhost:5173"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_origins_are_normalised_as_browsers_send_them(typed: str, origin: str) -> None:
    # When an origin is written with case, a default port or a trailing slash, Then it is stored as sent by browsers
    assert tenancy.normalise_origin(typed) == origin


@pytest.mark.unit
@pytest.mark.parametrize(
    "typed",
    [
        "docs.example.com",
        "https://*.example.com",
        "https://docs.example.com/help",
        "https://docs.example.com?x=1",
        "https://user:pw@docs.example.com",
        "ftp://docs.example.com",
        "https://docs.example.com:99999",
        "*",
    ],
)
def test_anything_but_an_origin_is_refused(typed: str) -> None:
    # When something that is not scheme://host[:port] is given, Then it is invalid input naming the field
    with pytest.raises(InvalidInput) as raised:
        tenancy.normalise_origin(typed)
    assert raised.value.details["field"] == "origins"


@pytest.mark.unit
def test_a_widget_key_needs_origins_and_an_admin_key_takes_none() -> None:
    # Then a widget key without origins, an admin key with some, and too many origins are refused
    with pytest.raises(InvalidInput, match="at least one origin"):
        tenancy.key_origins(tenancy.WIDGET, [])
    with pytest.raises(InvalidInput, match="takes no origins"):
        tenancy.key_origins(tenancy.ADMIN, ["https://a.example"])
    with pytest.raises(InvalidInput, match="at most"):
        tenancy.key_origins(tenancy.WIDGET, [f"https://s{i}.example" for i in range(tenancy.MAX_ORIGINS + 1)])
    # And duplicates after normalising count once
    assert tenancy.key_origins(tenancy.WIDGET, ["https://A.example/", "https://a.example"]) == ("https://a.example",)
