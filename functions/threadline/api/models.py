"""The base of every request body: unknown fields and text Postgres cannot store are refused at the edge."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, field_validator
from pydantic_core import PydanticCustomError

from threadline.domain.instants import out_of_range
from threadline.domain.text import unstorable_reason

T = TypeVar("T")


def _bounded(at: datetime) -> datetime:
    if (reason := out_of_range(at)) is not None:
        raise PydanticCustomError("datetime_out_of_range", reason)
    return at


Instant = Annotated[AwareDatetime, AfterValidator(_bounded)]
"""Every time a request carries: ISO 8601 with a zone, between 1970 and 2100 (domain/instants.py)."""


def _not_null(value: Any) -> Any:
    # Runs only on a value the client sent: an omitted field takes its default (None) without validation.
    if value is None:
        raise PydanticCustomError("null_not_allowed", "may be omitted, but not null: it needs a value")
    return value


_NOT_NULL = BeforeValidator(_not_null)
Omittable = Annotated[T | None, _NOT_NULL]
"""A PATCH field that may be left out (None: unchanged) but never sent as `null`: a 422 naming the field, since
null is not a value the field can take (`{"name": null}` on an alert rule was a 500). Its schema shows T alone
(RequestModel's `_omittable_schema`)."""


def _omittable_schema(schema: dict[str, Any], model: type[Any]) -> None:
    # `T | None` documents null as a value; for an Omittable field only T is, so the null branch is dropped.
    properties = schema.get("properties", {})
    for name, field in model.model_fields.items():
        prop = properties.get(field.alias or name)
        if prop is None or _NOT_NULL not in field.metadata or "anyOf" not in prop:
            continue
        branches = [b for b in prop.pop("anyOf") if b.get("type") != "null"]
        prop.update(branches[0] if len(branches) == 1 else {"anyOf": branches})


def _first_unstorable(value: Any) -> str | None:
    if isinstance(value, str):
        return unstorable_reason(value)
    if isinstance(value, list | tuple):
        return next((r for r in map(_first_unstorable, value) if r), None)
    if isinstance(value, dict):
        return next((r for r in map(_first_unstorable, [*value.keys(), *value.values()]) if r), None)
    return None


class RequestModel(BaseModel):
    """A request body: extra fields are a 422, and so is any string (nested in lists or dicts too) holding
    NUL or a lone surrogate, the error naming the field (nested models check their own fields)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_omittable_schema)

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        if (reason := _first_unstorable(value)) is not None:
            raise PydanticCustomError("string_unstorable", reason)
        return value
