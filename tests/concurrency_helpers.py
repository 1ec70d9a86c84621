"""Run the same work at once on several threads, each with its own database connection, as separate web nodes
or workers would: what the database serializes is what these tests prove."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from django.db import connections

T = TypeVar("T")


def on_separate_connections(count: int, work: Callable[[], T]) -> list[T]:
    start, results, errors = threading.Barrier(count), [], []

    def run() -> None:
        try:
            start.wait()
            results.append(work())
        except Exception as error:  # re-raised below: a thread's exception would otherwise vanish
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    return results
