"""Per-owner data keys, wrapped by the master key (envelope encryption), and their destruction."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from governance.errors import BiometricDataUnreadable, OwnerErased
from governance.models import VoiceOwner
from voicegate import crypto


def _context(owner: VoiceOwner) -> bytes:
    return f"owner:{owner.pk}".encode()


def _master_keys() -> dict[str, bytes]:
    keys = [settings.VOICEGATE_MASTER_KEY, *settings.VOICEGATE_RETIRED_MASTER_KEYS]
    return {crypto.key_id(key): key for key in keys}


def current_master_key_id() -> str:
    return crypto.key_id(settings.VOICEGATE_MASTER_KEY)


def data_key_for(owner: VoiceOwner) -> bytes:
    """The owner's plaintext data key, created on first use. Never stored unwrapped."""
    if owner.is_erased:
        raise OwnerErased(f"owner {owner.pk} was erased; their biometric data no longer exists")
    if owner.wrapped_data_key is None:
        return _create_data_key(owner)
    return _unwrap(owner)


def _create_data_key(owner: VoiceOwner) -> bytes:
    with transaction.atomic():
        locked = VoiceOwner.objects.select_for_update().get(pk=owner.pk)
        if locked.wrapped_data_key is not None:  # another request created it first
            owner.wrapped_data_key, owner.master_key_id = locked.wrapped_data_key, locked.master_key_id
            return _unwrap(owner)
        data_key = crypto.new_data_key()
        _store_wrapped(locked, data_key)
        owner.wrapped_data_key, owner.master_key_id = locked.wrapped_data_key, locked.master_key_id
        return data_key


def _unwrap(owner: VoiceOwner) -> bytes:
    master = _master_keys().get(owner.master_key_id)
    if master is None:
        raise BiometricDataUnreadable(
            f"owner {owner.pk}'s data key is wrapped by master key {owner.master_key_id}, which is not configured"
        )
    try:
        return crypto.unwrap_key(master, bytes(owner.wrapped_data_key), _context(owner))
    except crypto.DecryptionError:
        raise BiometricDataUnreadable(f"owner {owner.pk}'s wrapped data key failed authentication") from None


def _store_wrapped(owner: VoiceOwner, data_key: bytes) -> None:
    owner.wrapped_data_key = crypto.wrap_key(settings.VOICEGATE_MASTER_KEY, data_key, _context(owner))
    owner.master_key_id = current_master_key_id()
    owner.save(update_fields=["wrapped_data_key", "master_key_id"])


def destroy_data_key(owner: VoiceOwner) -> None:
    """Crypto-shredding: without the data key every blob of this owner is noise, wherever copies live."""
    VoiceOwner.objects.filter(pk=owner.pk).update(wrapped_data_key=None, master_key_id="")
    owner.wrapped_data_key, owner.master_key_id = None, ""


def rewrap_all() -> int:
    """Re-wrap every data key not under the current master key. Blobs are untouched. Returns the count."""
    current = current_master_key_id()
    rewrapped = 0
    stale = VoiceOwner.objects.filter(wrapped_data_key__isnull=False).exclude(master_key_id=current)
    for owner_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            owner = VoiceOwner.objects.select_for_update().get(pk=owner_id)
            if owner.wrapped_data_key is None or owner.master_key_id == current:
                continue
            _store_wrapped(owner, _unwrap(owner))
            rewrapped += 1
    return rewrapped
