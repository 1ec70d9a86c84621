"""The only way biometric bytes are written to or read from storage: encrypted under the owner's data key.

Blobs live in Django's default storage (filesystem by default; any backend works since only
ciphertext reaches it). Every read writes an audit event.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from governance import audit, keyring
from governance.errors import BiometricDataUnreadable
from governance.models import BiometricBlob, VoiceOwner
from voicegate import crypto


def _context(owner: VoiceOwner, storage_name: str, kind: str) -> bytes:
    return f"owner:{owner.pk}|blob:{storage_name}|kind:{kind}".encode()


def store(owner: VoiceOwner, kind: str, plaintext: bytes, *, content_type: str = "") -> BiometricBlob:
    """Encrypt and store one blob. The row is written only once the ciphertext is in storage."""
    data_key = keyring.data_key_for(owner)
    storage_name = f"biometric/{owner.pk}/{kind}-{secrets.token_hex(16)}.bin"
    ciphertext = crypto.encrypt(data_key, plaintext, _context(owner, storage_name, kind))
    saved_name = default_storage.save(storage_name, ContentFile(ciphertext))
    if saved_name != storage_name:  # the storage renamed it: the context would no longer match
        default_storage.delete(saved_name)
        raise RuntimeError(f"storage renamed {storage_name} to {saved_name}")
    try:
        return BiometricBlob.objects.create(
            owner=owner,
            kind=kind,
            storage_name=storage_name,
            content_type=content_type,
            plaintext_size=len(plaintext),
            ciphertext_sha256=hashlib.sha256(ciphertext).hexdigest(),
        )
    except Exception:
        default_storage.delete(storage_name)
        raise


@contextmanager
def staged(owner: VoiceOwner, kind: str, plaintext: bytes, *, content_type: str = "") -> Iterator[BiometricBlob]:
    """Store a blob for the rows about to point to it; if writing them fails, delete the blob again.

    Storage is not transactional, so this is how a failed request leaves no orphaned ciphertext behind.
    """
    blob = store(owner, kind, plaintext, content_type=content_type)
    try:
        yield blob
    except BaseException:
        delete(blob)
        raise


def read(blob: BiometricBlob, *, actor: str, purpose: str) -> bytes:
    """Decrypt one blob, refusing tampered ciphertext, and record the read in the audit log."""
    plaintext = decrypt(blob)
    audit_reads([blob], actor=actor, purpose=purpose)
    return plaintext


def audit_reads(blobs: list[BiometricBlob], *, actor: str, purpose: str) -> None:
    """One audit event for a batch of reads (a similarity screen reads many embeddings at once)."""
    if not blobs:
        return
    first = blobs[0]
    audit.record(
        "biometric.read",
        actor=actor,
        organization_id=first.owner.organization_id if len({b.owner_id for b in blobs}) == 1 else None,
        target=first if len(blobs) == 1 else None,
        data={
            "blobs": [{"id": b.pk, "owner": b.owner_id, "kind": b.kind} for b in blobs],
            "purpose": purpose,
        },
    )


def decrypt(blob: BiometricBlob) -> bytes:
    """Decrypt without auditing: only for callers that audit the read themselves (via audit_reads)."""
    owner = blob.owner
    data_key = keyring.data_key_for(owner)
    try:
        with default_storage.open(blob.storage_name, "rb") as handle:
            ciphertext = handle.read()
    except FileNotFoundError:
        raise BiometricDataUnreadable(f"blob {blob.pk} is missing from storage") from None
    try:
        plaintext = crypto.decrypt(data_key, ciphertext, _context(owner, blob.storage_name, blob.kind))
    except crypto.DecryptionError as error:
        raise BiometricDataUnreadable(f"blob {blob.pk}: {error}") from None
    return plaintext


def delete(blob: BiometricBlob) -> None:
    """Remove one blob from storage and the database (rows pointing to it are set to NULL)."""
    default_storage.delete(blob.storage_name)
    BiometricBlob.objects.filter(pk=blob.pk).delete()


def delete_all_for(owner: VoiceOwner) -> list[dict[str, object]]:
    """Delete every blob of the owner from storage and the database; returns what was deleted."""
    deleted = []
    for blob in BiometricBlob.objects.filter(owner=owner).order_by("pk"):
        default_storage.delete(blob.storage_name)
        deleted.append({"id": blob.pk, "kind": blob.kind, "ciphertext_sha256": blob.ciphertext_sha256})
    with transaction.atomic():
        BiometricBlob.objects.filter(owner=owner).delete()
    return deleted
