"""Loading pinned model files: read the bytes, compare their SHA-256 with the pin, and run exactly those bytes.

Framework-free. Engines never hand onnxruntime a path (a file could change between the check and the load); they
hand it the bytes that were checked.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class WeightsMismatch(RuntimeError):
    """A model file is missing or is not the pinned file; refuse to run on it."""


def read_checked(paths: Iterable[Path], sha256: str, reinstall: str) -> bytes:
    """The concatenated bytes of ``paths`` (a model may ship in parts), refused unless they hash to ``sha256``.

    ``reinstall`` names the pinned package(s) to reinstall, for the error message.
    """
    paths = list(paths)
    try:
        blob = b"".join(path.read_bytes() for path in paths)
    except OSError as exc:
        raise WeightsMismatch(f"model file {exc.filename} cannot be read ({exc.strerror}); reinstall {reinstall}") from exc
    digest = hashlib.sha256(blob).hexdigest()
    if digest != sha256:
        names = " + ".join(str(path) for path in paths)
        raise WeightsMismatch(f"model file {names} has sha256 {digest}, expected {sha256}; refusing to load "
                              f"(reinstall {reinstall})")
    return blob


def onnx_session(model: bytes, device: str | None = None, threads: int = 0) -> Any:
    """An onnxruntime session over checked model bytes; ``device``: None = CUDA when available, "cpu", "cuda"."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=_providers(device))
    logger.info("onnx model loaded (%s, %.1f MB)", session.get_providers()[0], len(model) / 1e6)
    return session


def _providers(device: str | None) -> list[str]:
    import onnxruntime

    if device is None:
        try:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        except ImportError:
            device = "cpu"
    if device == "cuda" and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
