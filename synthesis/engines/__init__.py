"""Synthesis engines behind one small Protocol (:class:`Engine`); framework-free, settings come in as arguments.

``fast``: Piper en_US-joe-medium + a per-voice WORLD conversion (:mod:`synthesis.engines.piper`).
``quality``: Kokoro-82M + a per-voice style vector (:mod:`synthesis.engines.kokoro`).
"""

from __future__ import annotations

import importlib
from pathlib import Path

from synthesis.engines.base import ENROLLMENT_SAMPLE_RATE, Engine, EngineError

__all__ = ["BUILT_IN", "ENROLLMENT_SAMPLE_RATE", "Engine", "EngineError", "build"]

# name -> "module:class"; imported only when built, so a deployment pays only for the engines it enables.
BUILT_IN = {
    "fast": "synthesis.engines.piper:FastEngine",
    "quality": "synthesis.engines.kokoro:QualityEngine",
}


def build(name: str, model_dir: Path | None = None) -> Engine:
    """A new engine called ``name`` with its default configuration. Raises KeyError for an unknown name.

    ``model_dir``: where the offline speech recognizer's weights are assembled, for an engine that checks its fits
    by ear (``fast``: see :mod:`synthesis.engines.intelligibility`); None leaves that check out."""
    module, cls = BUILT_IN[name].split(":")
    engine: Engine = getattr(importlib.import_module(module), cls).deployed(model_dir)
    return engine
