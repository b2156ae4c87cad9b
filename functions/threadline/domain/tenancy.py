"""Teams, projects and project API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from urllib.parse import urlsplit
from uuid import UUID

from threadline.domain.errors import InvalidInput, Unauthorized
from threadline.domain.pagination import Cursor, Page, PageRequest, page_in_memory

API_KEY_PREFIX = "tl"
_PREFIX_CHARS = 8
_SECRET_BYTES = 24

Scope = Literal["admin", "widget"]
ADMIN: Scope = "admin"
WIDGET: Scope = "widget"
# A widget sits on a handful of sites (docs, app, staging); more than this is a sign of a wildcard by hand.
MAX_ORIGINS = 20
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class Team:
    """A customer company; owns projects and receives usage reports."""

    id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Project:
    """One chatbot: its documents, categories, threads and keys."""

    id: UUID
    team_id: UUID
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """What may be shown about a stored key: never the key itself."""

    id: UUID
    project_id: UUID
    prefix: str
    name: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    scope: Scope = ADMIN
    origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A freshly created key: `key` is shown once and never stored."""

    info: ApiKeyInfo
    key: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the project (and its team) that an API key belongs to, and what the key may do."""

    project_id: UUID
    team_id: UUID
    key_id: UUID
    scope: Scope = ADMIN
    origins: tuple[str, ...] = ()

    @property
    def is_widget(self) -> bool:
        """A public widget key: chat only, from its origins only, rate limited."""
        return self.scope == WIDGET


@dataclass(frozen=True, slots=True)
class DefaultCategory:
    """A category every new project starts with."""

    name: str
    description: str
    examples: tuple[str, ...] = ()


DEFAULT_CATEGORIES: tuple[DefaultCategory, ...] = (
    DefaultCategory(
        "Discovery",
        "A user trying to figure out how to do something: how-to, setup, capabilities, where to find a feature.",
        (
            "How do I get started?",
            "Is there a way to export my data?",
            "How do I configure single sign-on?",
            "Can I use this with Python?",
        ),
    ),
    DefaultCategory(
        "Troubleshooting",
        "A user asking for help with a problem: an error, a crash, something broken or not working as expected.",
        (
            "I get an error when I log in",
            "The upload fails with a timeout",
            "Why is my request returning 500?",
            "It stopped working after the update",
        ),
    ),
)


class TenancyRepository(Protocol):
    """Storage of teams, projects and keys."""

    def create_team(self, name: str) -> Team: ...
    def get_team(self, team_id: UUID) -> Team: ...
    def list_teams(self) -> list[Team]: ...
    def create_project(self, team_id: UUID, name: str, categories: tuple[DefaultCategory, ...]) -> Project: ...
    def get_project(self, project_id: UUID) -> Project: ...
    def list_projects(self, team_id: UUID | None = None) -> list[Project]: ...
    def store_api_key(
        self,
        project_id: UUID,
        name: str,
        prefix: str,
        key_hash: bytes,
        scope: Scope = ADMIN,
        origins: tuple[str, ...] = (),
    ) -> ApiKeyInfo: ...
    def list_api_keys(self, project_id: UUID) -> list[ApiKeyInfo]: ...
    def revoke_api_key(self, project_id: UUID, key: UUID | str, keep_last_admin: bool = False) -> ApiKeyInfo:
        """Revoke a key by id or prefix (idempotent). With `keep_last_admin` (the API: a team must not lock itself
        out), Conflict for the project's last active admin key; operators (the CLI) may revoke it, a leaked key
        must be stoppable, and can issue the next one."""
        ...

    def principal_for_key_hash(self, key_hash: bytes) -> Principal | None: ...
    def origin_on_widget_key(self, origin: str) -> bool:
        """True when an active widget key lists this (normalised) origin."""
        ...


def hash_api_key(key: str) -> bytes:
    """SHA-256 of the key. Keys are 192-bit random secrets, so a fast hash is enough (no brute force)."""
    return hashlib.sha256(key.encode()).digest()


def _validate_name(kind: str, name: str) -> str:
    cleaned = name.strip()
    if not cleaned or len(cleaned) > 200:
        raise InvalidInput(f"{kind} name must be 1-200 characters")
    return cleaned


def create_team(repo: TenancyRepository, name: str) -> Team:
    """Create a team."""
    return repo.create_team(_validate_name("team", name))


def create_project(repo: TenancyRepository, team_id: UUID, name: str) -> Project:
    """Create a project with the default categories, so labelling works from its first thread."""
    repo.get_team(team_id)
    return repo.create_project(team_id, _validate_name("project", name), DEFAULT_CATEGORIES)


def normalise_origin(origin: str) -> str:
    """`scheme://host[:port]` in lower case, the scheme's default port left out, as browsers send `Origin`.

    InvalidInput for anything else: a path, a query, credentials, a wildcard, a scheme other than http(s).
    """
    text = origin.strip()
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise InvalidInput(f"origin {origin!r} is not a URL", field="origins") from None
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in _DEFAULT_PORTS or not host:
        raise InvalidInput(f"origin {origin!r} must be http(s)://host[:port]", field="origins")
    if "*" in text:
        raise InvalidInput(f"origin {origin!r}: wildcards are not allowed, list each origin", field="origins")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
        raise InvalidInput(f"origin {origin!r} must have no path, query or credentials", field="origins")
    if ":" in host:  # an IPv6 literal keeps its brackets in an Origin header
        host = f"[{host}]"
    suffix = "" if port is None or port == _DEFAULT_PORTS[scheme] else f":{port}"
    return f"{scheme}://{host}{suffix}"


def key_origins(scope: Scope, origins: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The normalised, de-duplicated origins of a key: at least one for a widget key, none for an admin key."""
    normalised = tuple(dict.fromkeys(normalise_origin(o) for o in origins))
    if scope == WIDGET and not normalised:
        raise InvalidInput("a widget key needs at least one origin", field="origins")
    if scope == ADMIN and normalised:
        raise InvalidInput("an admin key takes no origins (it is not for web pages)", field="origins")
    if len(normalised) > MAX_ORIGINS:
        raise InvalidInput(f"a key lists at most {MAX_ORIGINS} origins", field="origins")
    return normalised


def issue_api_key(
    repo: TenancyRepository,
    project_id: UUID,
    name: str = "default",
    scope: Scope = ADMIN,
    origins: list[str] | tuple[str, ...] = (),
) -> IssuedApiKey:
    """Create a key for a project. Only its hash and its public prefix are stored."""
    if scope not in (ADMIN, WIDGET):
        raise InvalidInput("scope must be admin or widget", field="scope")
    allowed = key_origins(scope, origins)
    cleaned = name.strip() or "default"
    if len(cleaned) > 200:
        raise InvalidInput("key name must be 1-200 characters", field="name")
    repo.get_project(project_id)
    prefix = secrets.token_hex(_PREFIX_CHARS // 2)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    info = repo.store_api_key(project_id, cleaned, prefix, hash_api_key(key), scope, allowed)
    return IssuedApiKey(info=info, key=key)


def authenticate(repo: TenancyRepository, key: str | None) -> Principal:
    """The principal of a presented key; raises Unauthorized for a missing, unknown or revoked key."""
    if not key:
        raise Unauthorized("missing X-API-KEY header")
    if not key.startswith(f"{API_KEY_PREFIX}_") or len(key) > 200:
        raise Unauthorized("invalid API key")
    principal = repo.principal_for_key_hash(hash_api_key(key))
    if principal is None:
        raise Unauthorized("invalid API key")
    return principal


def list_api_keys(repo: TenancyRepository, project_id: UUID, page: PageRequest) -> Page[ApiKeyInfo]:
    """A page of the project's keys, oldest first, revoked ones included (a project has a few: read whole)."""
    return page_in_memory(repo.list_api_keys(project_id), page, lambda k: Cursor.after(k.created_at, k.id))
