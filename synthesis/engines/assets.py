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
    """An onnxruntime session over checked model bytes; ``device``: None = CUDA when available, "cpu", "cuda";
    ``threads``: intra-op threads of one run on the CPU (0: one per physical core)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    # Idle intra-op workers spin by default, after every operator and every run. On a small machine shared with
    # the web server, other streams and other jobs, they take the core the other thread of the same run (or the
    # next step) is waiting for. Kokoro's first chunk ("Good morning,") on the 2 cores, two threads: 240-300 ms
    # idle either way; with one core busy elsewhere 490-660 ms spinning, 335 ms not (one thread: 370-390 ms).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    _one_blas_thread()
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=_providers(device))
    logger.info("onnx model loaded (%s, %.1f MB)", session.get_providers()[0], len(model) / 1e6)
    return session


def _one_blas_thread() -> None:
    """numpy's BLAS (OpenBLAS) on one thread, for the rest of the process. The engines' matrices are small (the
    fast engine's frame-bank lookup: a few hundred frames by 800), and OpenBLAS's idle workers spin after every
    call, taking the core that the next step or another request needs (gateway overhead 21.5 -> 18.4 ms p50 on
    the 2-core machine). Set with every engine's ONNX session, so it holds wherever an engine runs."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


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
