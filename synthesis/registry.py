"""Engines by name, one instance per process, limited to those this deployment enables (VOICEGATE_ENGINES)."""

from __future__ import annotations

import threading

from django.conf import settings

from synthesis import engines
from synthesis.engines.base import Engine
from synthesis.errors import UnknownEngine

_instances: dict[str, Engine] = {}
_lock = threading.Lock()


def get(name: str) -> Engine:
    if name not in settings.VOICEGATE_ENGINES:
        raise UnknownEngine(f"engine {name!r} is not offered here; choose one of {settings.VOICEGATE_ENGINES}")
    with _lock:
        if name not in _instances:
            if name not in engines.BUILT_IN:
                raise UnknownEngine(f"engine {name!r} is not built into this release")
            _instances[name] = engines.build(name, settings.VOICEGATE_MODEL_DIR)
        return _instances[name]
