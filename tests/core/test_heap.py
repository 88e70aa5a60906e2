"""A served app's start-up objects are out of the collector's walks (app/core/heap.py)."""

from __future__ import annotations

import gc

import pytest

from app.core import heap


async def test_serving_freezes_what_start_up_made(app, monkeypatch: pytest.MonkeyPatch) -> None:
    gc.unfreeze()
    monkeypatch.setitem(heap._frozen, "done", False)
    routes = app.router.routes  # built by create_app, before the server starts it
    assert any(obj is routes for obj in gc.get_objects())
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 0
            assert not any(obj is routes for obj in gc.get_objects())  # frozen: never walked
            later = [object()]  # made while serving: the collector still sees it
            assert any(obj is later for obj in gc.get_objects())
    finally:
        gc.unfreeze()
