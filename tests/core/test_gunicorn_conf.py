"""The garbage collector's setting in gunicorn.conf.py."""

import gc
import runpy
from pathlib import Path

import pytest

CONF = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


@pytest.fixture
def conf(monkeypatch):
    monkeypatch.delenv("GC_FREEZE", raising=False)
    yield lambda: runpy.run_path(str(CONF))
    gc.unfreeze()


def test_a_worker_s_collections_skip_what_the_master_made(conf):
    made_by_the_master = [object() for _ in range(10)]

    conf()["pre_fork"](None, None)

    assert gc.get_freeze_count() >= len(made_by_the_master)


def test_freezing_can_be_turned_off(conf, monkeypatch):
    monkeypatch.setenv("GC_FREEZE", "0")

    conf()["pre_fork"](None, None)

    assert gc.get_freeze_count() == 0
