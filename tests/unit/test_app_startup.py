"""The process-wide app hides its startup objects from the garbage collector's full collections."""

from __future__ import annotations

import gc
from typing import cast

import pytest

from threadline.api import app as app_module
from threadline.bootstrap import Container


@pytest.mark.unit
def test_only_the_process_wide_app_freezes_its_startup_objects(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given nothing frozen, and a process-wide container that is never touched while the app is built
    monkeypatch.setattr(app_module, "get_container", lambda: cast(Container, object()))
    gc.unfreeze()
    try:
        # When a test builds its own app, nothing is frozen
        app_module.create_app(cast(Container, object()))
        assert gc.get_freeze_count() == 0
        # When the process-wide app is built (Lambda, uvicorn), everything alive is frozen
        app_module.create_app()
        assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
