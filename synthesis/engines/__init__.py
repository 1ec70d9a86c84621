"""Synthesis engines behind one small Protocol (:class:`Engine`); framework-free, settings come in as arguments.

``fast``: Piper en_US-joe-medium + a per-voice WORLD conversion (:mod:`synthesis.engines.piper`).
"""

from synthesis.engines.base import ENROLLMENT_SAMPLE_RATE, Engine, EngineError

__all__ = ["ENROLLMENT_SAMPLE_RATE", "Engine", "EngineError", "get_engine"]


def get_engine(name: str) -> Engine:
    """The process-wide engine called ``name`` (loaded lazily on first use). Raises KeyError for an unknown name."""
    if name == "fast":
        from synthesis.engines.piper import get_engine as fast

        return fast()
    raise KeyError(f"unknown synthesis engine {name!r}")
