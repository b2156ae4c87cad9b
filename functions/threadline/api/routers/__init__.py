"""Routers, one per resource; `ROUTERS` is the list the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from threadline.api.routers import documents, health, keys

ROUTERS: list[APIRouter] = [health.router, keys.router, documents.router]
