"""One-time demo setup that `threadline dev` runs once the demo project exists.

Add a callable taking a `threadline.local.demo.DemoContext` to DEMO_SETUP (e.g. ingest the repository's
docs into the demo project). Each hook runs once per demo project; `.local/demo.json` remembers which ran.
Hooks should still be idempotent: deleting `.local/demo.json` runs them again.
"""

from __future__ import annotations

from threadline.local.demo import DemoSetup

DEMO_SETUP: list[DemoSetup] = []
