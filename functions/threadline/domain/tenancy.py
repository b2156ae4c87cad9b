"""Teams, projects and project API keys."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from threadline.domain.errors import InvalidInput, Unauthorized
from threadline.domain.pagination import Cursor, Page, PageRequest, page_in_memory

API_KEY_PREFIX = "tl"
_PREFIX_CHARS = 8
_SECRET_BYTES = 24


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


@dataclass(frozen=True, slots=True)
class IssuedApiKey:
    """A freshly created key: `key` is shown once and never stored."""

    info: ApiKeyInfo
    key: str


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the project (and its team) that an API key belongs to."""

    project_id: UUID
    team_id: UUID
    key_id: UUID


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
    def store_api_key(self, project_id: UUID, name: str, prefix: str, key_hash: bytes) -> ApiKeyInfo: ...
    def list_api_keys(self, project_id: UUID) -> list[ApiKeyInfo]: ...
    def revoke_api_key(self, project_id: UUID, prefix: str) -> ApiKeyInfo: ...
    def principal_for_key_hash(self, key_hash: bytes) -> Principal | None: ...


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


def issue_api_key(repo: TenancyRepository, project_id: UUID, name: str = "default") -> IssuedApiKey:
    """Create a key for a project. Only its hash and its public prefix are stored."""
    repo.get_project(project_id)
    prefix = secrets.token_hex(_PREFIX_CHARS // 2)
    key = f"{API_KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    info = repo.store_api_key(project_id, name.strip() or "default", prefix, hash_api_key(key))
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
