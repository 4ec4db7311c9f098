from __future__ import annotations

import pytest

import memberplatform.models  # noqa: F401  (pg_url create_all needs every table on the metadata)
from tests.security.world import build_world, dispose


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One SQLite app with the cast for the whole module (the access matrix and fuzzing)."""
    path = tmp_path_factory.mktemp("security")
    world = build_world(f"sqlite:///{path / 'security.sqlite3'}", str(path / "uploads"))
    yield world
    dispose(world)
