"""Speaker embeddings: pinned weights, one encoder per process, unit-norm 256-d vectors, a bounded erasable cache."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicegate.audio import embedding
from voicegate.audio.embedding import (
    PRETRAINED_SHA256,
    EmbeddingCache,
    EncoderConfig,
    WeightsMismatch,
    cosine,
    embed,
    embed_differentiable,
    load_encoder,
    preprocess,
    profile_embedding,
)

FIXTURES = Path(__file__).parent / "fixtures" / "librispeech"


def _speech(name: str) -> np.ndarray:
    x, rate = sf.read(FIXTURES / name, dtype="float32")
    assert rate == 16_000
    return x


def test_weights_with_another_hash_are_refused(tmp_path: Path) -> None:
    tampered = tmp_path / "pretrained.pt"
    data = bytearray(embedding.default_weights_path().read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightsMismatch, match="sha256"):
        load_encoder(EncoderConfig(weights_path=tampered, device="cpu"))


def test_pinned_hash_is_the_installed_wheels_weights() -> None:
    import hashlib

    assert hashlib.sha256(embedding.default_weights_path().read_bytes()).hexdigest() == PRETRAINED_SHA256


def test_encoder_is_loaded_once_per_process_even_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    sentinel = object()

    def fake_load(config: EncoderConfig) -> object:
        calls.append(1)
        return sentinel

    monkeypatch.setattr(embedding, "_encoder", None)
    monkeypatch.setattr(embedding, "load_encoder", fake_load)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(embedding.get_encoder())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1] and all(g is sentinel for g in got)


def test_embedding_is_256_dim_float32_unit_norm() -> None:
    vec = embed(_speech("1688-142285-0006.flac"))
    assert vec.shape == (256,) and vec.dtype == np.float32
    assert float(np.linalg.norm(vec)) == pytest.approx(1.0, abs=1e-5)


def test_same_speaker_scores_higher_than_another_speaker() -> None:
    a1, a2 = embed(_speech("1688-142285-0006.flac")), embed(_speech("1688-142285-0007.flac"))
    b = embed(_speech("1998-15444-0006.flac"))
    assert cosine(a1, a2) > embedding.VERIFY_THRESHOLD > cosine(a1, b)


def test_preprocessing_trims_and_levels_exactly_as_resemblyzer_does() -> None:
    from resemblyzer import preprocess_wav

    quiet = 0.05 * _speech("1998-15444-0006.flac")  # far below -30 dBFS, so the volume is raised too
    for wav in (_speech("1688-142285-0006.flac"), quiet):
        ours, theirs = preprocess(wav), preprocess_wav(wav)
        assert ours.shape == theirs.shape and len(ours) < len(wav)
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_differentiable_embedding_is_the_embedding_and_has_a_gradient() -> None:
    import torch

    wav = torch.tensor(_speech("1688-142285-0007.flac"), requires_grad=True)
    vector = embed_differentiable(wav)
    np.testing.assert_allclose(vector.detach().numpy(), embed(wav.detach().numpy()), atol=1e-5)
    (vector @ torch.from_numpy(embed(_speech("1688-142285-0006.flac")))).backward()
    assert wav.grad is not None and torch.isfinite(wav.grad).all() and float(wav.grad.abs().max()) > 0


def test_profile_embedding_is_the_normalized_mean() -> None:
    a, b = np.eye(256, dtype=np.float32)[0], np.eye(256, dtype=np.float32)[1]
    p = profile_embedding([a, b * 3])
    assert p == pytest.approx(np.array([2 ** -0.5, 2 ** -0.5] + [0] * 254, dtype=np.float32), abs=1e-6)


def test_profile_of_no_embeddings_is_refused() -> None:
    with pytest.raises(ValueError):
        profile_embedding([])


def test_cosine_with_a_zero_vector_is_zero() -> None:
    assert cosine(np.zeros(256), np.ones(256)) == 0.0
    assert cosine(np.ones(4), np.ones(4) * 2) == pytest.approx(1.0)


def test_cache_evicts_the_least_recently_used_entry() -> None:
    cache = EmbeddingCache(max_entries=2)
    cache.put("alice", 1, np.ones(3))
    cache.put("bob", 1, np.ones(3))
    assert cache.get("alice", 1) is not None  # alice is now the most recent
    cache.put("carol", 1, np.ones(3))
    assert cache.get("bob", 1) is None and cache.get("alice", 1) is not None and len(cache) == 2


def test_forget_drops_every_entry_of_that_owner_and_no_other() -> None:
    cache = EmbeddingCache()
    for key in range(3):
        cache.put("alice", key, np.ones(3))
    cache.put("bob", 0, np.ones(3))
    assert cache.forget("alice") == 3
    assert all(cache.get("alice", k) is None for k in range(3)) and cache.get("bob", 0) is not None


def test_cached_embedding_is_a_read_only_copy() -> None:
    cache = EmbeddingCache()
    source = np.ones(3, dtype=np.float32)
    cache.put("alice", "blob", source)
    source[0] = 5
    got = cache.get("alice", "blob")
    assert got is not None and got[0] == 1.0
    with pytest.raises(ValueError):
        got[0] = 2.0


def test_module_level_cache_functions_forget_an_owner() -> None:
    embedding.cache_put("owner-x", "blob-1", np.ones(256))
    assert embedding.cache_get("owner-x", "blob-1") is not None
    assert embedding.forget("owner-x") == 1
    assert embedding.cache_get("owner-x", "blob-1") is None
