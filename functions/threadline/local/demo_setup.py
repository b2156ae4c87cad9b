"""One-time demo setup that `threadline dev` runs once the demo project exists.

Add a callable taking a `threadline.local.demo.DemoContext` to DEMO_SETUP. Each hook runs once per demo
project; `.local/demo.json` remembers which ran. Hooks should still be idempotent: deleting
`.local/demo.json` runs them again.
"""

from __future__ import annotations

from threadline.local.demo import DemoContext, DemoSetup


def ingest_repository_docs(context: DemoContext) -> None:
    """The repository's README and docs/ become the demo project's documents, so first questions get answers."""
    from threadline.local.demo_docs import ingest_repository_docs as ingest

    ingest(context.container, context.demo.project_id, context.repo_root)


DEMO_SETUP: list[DemoSetup] = [ingest_repository_docs]
