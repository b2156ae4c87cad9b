"""Routers, one per resource; `ROUTERS` is the list the app mounts."""

from __future__ import annotations

from fastapi import APIRouter

from threadline.api.routers import (
    alerts,
    analytics,
    backfills,
    categories,
    chat,
    documents,
    feedback,
    health,
    imports,
    keys,
    mcp_settings,
    report_settings,
    thread_labels,
)

ROUTERS: list[APIRouter] = [
    health.router,
    keys.router,
    documents.router,
    categories.router,
    thread_labels.router,
    alerts.router,
    imports.router,
    backfills.router,
    chat.router,
    feedback.router,
    analytics.router,
    report_settings.router,
    mcp_settings.router,
]
