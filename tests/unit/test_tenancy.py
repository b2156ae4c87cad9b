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
