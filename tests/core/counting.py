"""Counting the calls a request makes to a function (what a per-request saving shows)."""

from __future__ import annotations

from typing import Any


def count_calls(monkeypatch: Any, owner: Any, name: str) -> list[tuple[Any, ...]]:
    """Replace ``owner.name`` for the test with a wrapper recording each call's
    arguments; the list it records into."""
    calls: list[tuple[Any, ...]] = []
    original = getattr(owner, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, counting)
    return calls
