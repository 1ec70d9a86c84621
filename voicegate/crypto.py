"""AES-256-GCM envelope encryption with pycryptodome. Framework-free.

Blob layout: MAGIC (4 bytes) | nonce (12) | tag (16) | ciphertext. The associated data binds each
ciphertext to its context (owner, blob id), so a blob copied to another owner's record is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from Crypto.Cipher import AES

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_BLOB_MAGIC = b"VGB1"
_WRAP_MAGIC = b"VGK1"


class DecryptionError(Exception):
    """Wrong key, wrong context, truncated or tampered ciphertext."""


def new_data_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def key_id(key: bytes) -> str:
    """A short public name for a key: lets a record say which key protects it without revealing it."""
    return hashlib.sha256(b"voicegate-key-id:" + key).hexdigest()[:16]


def encrypt(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    return _seal(_BLOB_MAGIC, key, plaintext, context)


def decrypt(key: bytes, blob: bytes, context: bytes) -> bytes:
    return _open(_BLOB_MAGIC, key, blob, context)


def wrap_key(master_key: bytes, data_key: bytes, context: bytes) -> bytes:
    return _seal(_WRAP_MAGIC, master_key, data_key, context)


def unwrap_key(master_key: bytes, wrapped: bytes, context: bytes) -> bytes:
    return _open(_WRAP_MAGIC, master_key, wrapped, context)


def hmac_sha256(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _seal(magic: bytes, key: bytes, plaintext: bytes, context: bytes) -> bytes:
    _check_key(key)
    nonce = secrets.token_bytes(_NONCE_BYTES)
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(magic + context)
    ciphertext, tag = cipher.encrypt_and_digest(plaintext)
    return magic + nonce + tag + ciphertext


def _open(magic: bytes, key: bytes, blob: bytes, context: bytes) -> bytes:
    _check_key(key)
    header = len(magic) + _NONCE_BYTES + _TAG_BYTES
    if len(blob) < header or not blob.startswith(magic):
        raise DecryptionError("not a Voicegate ciphertext, or truncated")
    nonce = blob[len(magic) : len(magic) + _NONCE_BYTES]
    tag = blob[len(magic) + _NONCE_BYTES : header]
    cipher = AES.new(key, AES.MODE_GCM, nonce=nonce, mac_len=_TAG_BYTES)
    cipher.update(magic + context)
    try:
        return cipher.decrypt_and_verify(blob[header:], tag)
    except ValueError:
        raise DecryptionError("authentication failed: wrong key or context, or the ciphertext was altered") from None


def _check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"AES-256 needs a {KEY_BYTES}-byte key, got {len(key)}")
