"""Synthetic-speech classifier: pinned weights, refusal of tampered weights and hostile input, scores on fixtures.

Fast and self-contained: the weights ship in detection/weights/, the clips in tests/fixtures/ (no ../shared).
The error rates themselves are measured by bench/detector_eval.py, not asserted here.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from detection.classifier import (
    DetectorConfig,
    Score,
    WeightsMismatch,
    get_detector,
    load_detector,
    windows,
)

FIXTURES = Path(__file__).parent / "fixtures"
REAL = sorted((FIXTURES / "librispeech").glob("*.flac"))
ESPEAK = sorted((FIXTURES / "enrollment").glob("*.flac"))


def _clip(path: Path) -> np.ndarray:
    wav, rate = sf.read(path, dtype="float32")
    assert rate == 16_000
    return wav


@pytest.fixture(scope="module")
def detector():  # type: ignore[no-untyped-def]
    return load_detector(device="cpu")


def test_classifier_imports_without_django() -> None:
    code = "import sys, detection.classifier; print(sorted(m for m in ('django', 'celery') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_weights_load_with_pinned_hash(detector) -> None:  # type: ignore[no-untyped-def]
    low, high = detector.thresholds
    assert 0.0 < low <= 0.5 <= high < 1.0
    assert DetectorConfig().weights_path.stat().st_size < 2_000_000


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    blob = bytearray(DetectorConfig().weights_path.read_bytes())
    blob[-100] ^= 0xFF
    bad = tmp_path / "detector.pt"
    bad.write_bytes(bytes(blob))
    with pytest.raises(WeightsMismatch, match="sha256"):
        load_detector(replace(DetectorConfig(), weights_path=bad), device="cpu")


def test_missing_weights_are_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsMismatch, match="cannot read"):
        load_detector(replace(DetectorConfig(), weights_path=tmp_path / "absent.pt"), device="cpu")


def test_process_wide_detector_is_loaded_once() -> None:
    assert get_detector() is get_detector()


@pytest.mark.parametrize("path", REAL, ids=lambda p: p.name)
def test_real_speech_fixtures_are_not_called_synthetic(detector, path: Path) -> None:  # type: ignore[no-untyped-def]
    result = detector.score(_clip(path))
    assert isinstance(result, Score)
    assert result.band in ("real", "inconclusive"), result


@pytest.mark.parametrize("path", ESPEAK, ids=lambda p: p.name)
def test_espeak_fixtures_score_above_the_operating_point(detector, path: Path) -> None:  # type: ignore[no-untyped-def]
    # Not all reach the confident "synthetic" band: it is set so that at most 1% of real speech does (held out,
    # 75% of espeak-ng clips reach it; docs/detection.md).
    result = detector.score(_clip(path))
    assert result.probability_synthetic >= 0.5, result
    assert result.band != "real", result


def test_most_espeak_fixtures_are_called_synthetic(detector) -> None:  # type: ignore[no-untyped-def]
    bands = [detector.score(_clip(path)).band for path in ESPEAK]
    assert bands.count("synthetic") > len(bands) / 2, bands


def test_score_is_deterministic_and_a_probability(detector) -> None:  # type: ignore[no-untyped-def]
    x = _clip(REAL[0])
    a, b = detector.score(x), detector.score(x.copy())
    assert a == b
    assert 0.0 <= a.probability_synthetic <= 1.0


def test_level_does_not_change_the_score(detector) -> None:  # type: ignore[no-untyped-def]
    x = _clip(ESPEAK[0])
    assert abs(detector.score(x).raw_logit - detector.score(0.1 * x).raw_logit) < 1e-3


def test_long_clips_are_scored_in_windows(detector) -> None:  # type: ignore[no-untyped-def]
    x = np.concatenate([_clip(p) for p in REAL])
    assert windows(x).shape[1] == 64_000 and windows(x).shape[0] > 5
    assert detector.score(x).band in ("real", "inconclusive", "synthetic")


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros(0, np.float32),
        np.full(16_000, np.nan, np.float32),
        np.concatenate([np.zeros(16_000, np.float32), [np.inf]]).astype(np.float32),
        np.zeros(100, np.float32),
        np.zeros((2, 16_000), np.float32),
        np.array(["a"] * 16_000),
    ],
    ids=["empty", "nan", "inf", "too_short", "stereo", "strings"],
)
def test_hostile_input_raises_value_error(detector, bad: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        detector.score(bad)


def test_silence_scores_without_error(detector) -> None:  # type: ignore[no-untyped-def]
    assert detector.score(np.zeros(32_000, np.float32)).band in ("real", "inconclusive", "synthetic")


def test_bands_are_conformal_order_statistics_of_the_calib_clips() -> None:
    from detection.train_detector import choose_bands

    real = np.linspace(0.0, 0.9, 122)  # (122 + 1) * 0.99 rounds up past 121: only the top real clip bounds 1%
    synth = np.linspace(0.05, 1.0, 298)  # floor(299 * 0.02) = 5: the fifth lowest synthetic clip
    low, high = choose_bands(np.concatenate([real, synth]), np.array([0] * 122 + [1] * 298))
    assert high == pytest.approx(real[-1])
    assert low == pytest.approx(synth[4])
    real_many = np.linspace(0.0, 0.9, 999)  # rank ceil(1000 * 0.99) = 990 of 999: ten clips reach it
    _, high_many = choose_bands(real_many, np.zeros(999, int))
    assert high_many == pytest.approx(real_many[989])
