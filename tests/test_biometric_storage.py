"""Invariant 4: biometric data is stored only encrypted, under a per-owner key wrapped by the master key."""

from pathlib import Path

import pytest
from django.core.management import call_command

from governance import biometrics, erasure, keyring
from governance.errors import BiometricDataUnreadable, OwnerErased
from governance.models import AuditEvent, BiometricBlob, VoiceOwner
from tests.factories import VoiceOwnerFactory
from voicegate import crypto

pytestmark = pytest.mark.django_db
SECRET_AUDIO = b"RIFF-fake-wav-" + bytes(range(256)) * 8


def _stored_bytes(settings, blob: BiometricBlob) -> bytes:
    return (Path(settings.MEDIA_ROOT) / blob.storage_name).read_bytes()


def test_blob_is_encrypted_at_rest_and_reads_back(settings):
    owner = VoiceOwnerFactory()
    blob = biometrics.store(owner, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO)
    on_disk = _stored_bytes(settings, blob)
    assert SECRET_AUDIO[:64] not in on_disk
    assert biometrics.read(blob, actor="test", purpose="unit test") == SECRET_AUDIO


def test_each_owner_gets_their_own_data_key():
    first, second = VoiceOwnerFactory(), VoiceOwnerFactory()
    assert keyring.data_key_for(first) != keyring.data_key_for(second)
    assert keyring.data_key_for(first) == keyring.data_key_for(VoiceOwner.objects.get(pk=first.pk))


def test_data_key_is_stored_only_wrapped():
    owner = VoiceOwnerFactory()
    data_key = keyring.data_key_for(owner)
    owner.refresh_from_db()
    assert data_key not in bytes(owner.wrapped_data_key)
    assert owner.master_key_id == keyring.current_master_key_id()


def test_every_read_of_biometric_data_is_audited():
    owner = VoiceOwnerFactory()
    blob = biometrics.store(owner, BiometricBlob.Kind.EMBEDDING, b"\x00" * 1024)
    biometrics.read(blob, actor="user:1:alice", purpose="review")
    event = AuditEvent.objects.get(action="biometric.read")
    assert event.actor == "user:1:alice"
    assert event.data == {"blobs": [{"id": blob.pk, "owner": owner.pk, "kind": "embedding"}], "purpose": "review"}


def test_tampered_blob_is_refused(settings):
    owner = VoiceOwnerFactory()
    blob = biometrics.store(owner, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO)
    path = Path(settings.MEDIA_ROOT) / blob.storage_name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x80
    path.write_bytes(bytes(data))
    with pytest.raises(BiometricDataUnreadable, match="authentication failed"):
        biometrics.read(blob, actor="test", purpose="unit test")


def test_blob_swapped_between_owners_is_refused(settings):
    alice, bob = VoiceOwnerFactory(), VoiceOwnerFactory()
    alice_blob = biometrics.store(alice, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO)
    bob_blob = biometrics.store(bob, BiometricBlob.Kind.SAMPLE_AUDIO, b"bob's audio")
    (Path(settings.MEDIA_ROOT) / bob_blob.storage_name).write_bytes(_stored_bytes(settings, alice_blob))
    with pytest.raises(BiometricDataUnreadable):
        biometrics.read(bob_blob, actor="test", purpose="unit test")


def test_destroying_the_data_key_makes_blobs_unreadable_even_from_a_copy(settings):
    owner = VoiceOwnerFactory()
    blob = biometrics.store(owner, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO)
    backup_copy = _stored_bytes(settings, blob)
    old_key = keyring.data_key_for(owner)
    keyring.destroy_data_key(owner)
    owner.refresh_from_db()
    assert owner.wrapped_data_key is None
    # Crypto-shredding: the ciphertext that survives (in a backup, say) opens with no key the service holds.
    fresh_key = keyring.data_key_for(owner)  # a new key for any future data, unrelated to the old one
    assert fresh_key != old_key
    with pytest.raises(BiometricDataUnreadable):
        biometrics.read(blob, actor="test", purpose="unit test")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt(fresh_key, backup_copy, f"owner:{owner.pk}|blob:{blob.storage_name}|kind:{blob.kind}".encode())


def test_erased_owner_has_no_data_key_at_all():
    owner = VoiceOwnerFactory()
    erasure.erase(owner, actor="test")
    owner.refresh_from_db()
    with pytest.raises(OwnerErased):
        keyring.data_key_for(owner)


def test_master_key_rotation_rewraps_data_keys_without_touching_blobs(settings):
    owner = VoiceOwnerFactory()
    blob = biometrics.store(owner, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO)
    ciphertext_before = _stored_bytes(settings, blob)
    old_master, new_master = settings.VOICEGATE_MASTER_KEY, bytes(range(100, 132))
    settings.VOICEGATE_MASTER_KEY, settings.VOICEGATE_RETIRED_MASTER_KEYS = new_master, [old_master]

    call_command("rotate_master_key")

    owner.refresh_from_db()
    assert owner.master_key_id == crypto.key_id(new_master)
    assert _stored_bytes(settings, blob) == ciphertext_before
    settings.VOICEGATE_RETIRED_MASTER_KEYS = []  # the old key is gone for good
    assert biometrics.read(blob, actor="test", purpose="unit test") == SECRET_AUDIO


def test_data_key_under_an_unknown_master_key_is_reported_not_crashed(settings):
    owner = VoiceOwnerFactory()
    blob = biometrics.store(owner, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO)
    settings.VOICEGATE_MASTER_KEY = bytes(range(1, 33))
    with pytest.raises(BiometricDataUnreadable, match="not configured"):
        biometrics.read(BiometricBlob.objects.get(pk=blob.pk), actor="test", purpose="unit test")


def test_a_staged_blob_is_deleted_when_the_rows_pointing_to_it_fail(settings):
    owner = VoiceOwnerFactory()
    with pytest.raises(RuntimeError):
        with biometrics.staged(owner, BiometricBlob.Kind.SAMPLE_AUDIO, SECRET_AUDIO) as blob:
            stored = Path(settings.MEDIA_ROOT) / blob.storage_name
            assert stored.exists()
            raise RuntimeError("the row insert failed")
    assert not stored.exists() and not BiometricBlob.objects.exists()
