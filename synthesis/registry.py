"""Engines by name, one instance per process, limited to those this deployment enables (VOICEGATE_ENGINES)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.conf import settings

from synthesis.engines.base import Engine
from synthesis.errors import UnknownEngine

_instances: dict[str, Engine] = {}
_lock = threading.Lock()


def _factories() -> dict[str, Callable[[], Engine]]:
    from synthesis.engines import piper

    return {"fast": piper.FastEngine}


def get(name: str) -> Engine:
    if name not in settings.VOICEGATE_ENGINES:
        raise UnknownEngine(f"engine {name!r} is not offered here; choose one of {settings.VOICEGATE_ENGINES}")
    with _lock:
        if name not in _instances:
            factory = _factories().get(name)
            if factory is None:
                raise UnknownEngine(f"engine {name!r} is not built into this release")
            _instances[name] = factory()
        return _instances[name]
