"""Speaker embeddings as encrypted blobs, with a bounded per-process cache of decrypted vectors.

Every load is audited (a cache hit saves decryption, not accountability). Erasure calls forget().
"""

from __future__ import annotations

from contextlib import AbstractContextManager

import numpy as np

from governance import biometrics
from governance.models import BiometricBlob, VoiceOwner
from voicegate.audio import embedding

_DTYPE = "<f4"
_CONTENT_TYPE = "application/x-float32-vector"


def store(owner: VoiceOwner, vector: np.ndarray) -> BiometricBlob:
    return biometrics.store(owner, BiometricBlob.Kind.EMBEDDING, _bytes(vector), content_type=_CONTENT_TYPE)


def staged(owner: VoiceOwner, vector: np.ndarray) -> AbstractContextManager[BiometricBlob]:
    """biometrics.staged() for a vector: deleted again if the rows that should point to it fail."""
    return biometrics.staged(owner, BiometricBlob.Kind.EMBEDDING, _bytes(vector), content_type=_CONTENT_TYPE)


def _bytes(vector: np.ndarray) -> bytes:
    return np.asarray(vector, dtype=_DTYPE).tobytes()


def load_many(blobs: list[BiometricBlob], *, actor: str, purpose: str) -> list[np.ndarray]:
    vectors = [_load(blob) for blob in blobs]
    biometrics.audit_reads(blobs, actor=actor, purpose=purpose)
    return vectors


def load(blob: BiometricBlob, *, actor: str, purpose: str) -> np.ndarray:
    return load_many([blob], actor=actor, purpose=purpose)[0]


def forget(owner: VoiceOwner) -> int:
    """Drop the owner's decrypted vectors from this process's cache."""
    return embedding.forget(owner.pk)


def _load(blob: BiometricBlob) -> np.ndarray:
    # Keyed by the ciphertext's hash, not the row id: an entry can never stand for other bytes.
    cached = embedding.cache_get(blob.owner_id, blob.ciphertext_sha256)
    if cached is not None:
        return cached
    vector = np.frombuffer(biometrics.decrypt(blob), dtype=_DTYPE).copy()
    embedding.cache_put(blob.owner_id, blob.ciphertext_sha256, vector)
    return vector
