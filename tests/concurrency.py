"""Run one operation from many threads at once, each with its own session."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from memberplatform.core.errors import DomainError
from memberplatform.extensions import db


def run_together(app, count: int, operation: Callable[[int], Any]) -> list[Any]:
    """Start ``count`` threads behind a barrier; each runs ``operation(i)`` and commits.

    Returns, per thread, the operation's result or the exception it raised
    (domain errors are expected outcomes; anything else fails the caller's test).
    """
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def worker(index: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                results[index] = operation(index)
                db.session.commit()
            except DomainError as error:
                db.session.rollback()
                results[index] = error
            except Exception as error:  # reported to the test, which fails on it
                db.session.rollback()
                results[index] = error
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def integrity_problems(app) -> list[tuple[str, str]]:
    from memberplatform.cli import run_integrity_checks

    with app.app_context():
        return run_integrity_checks()
