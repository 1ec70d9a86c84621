"""API keys: minted once, stored as a peppered HMAC with a visible prefix, checked in constant time."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import audit
from governance.models import ApiKey, Organization, VoiceProfile
from voicegate import crypto

KEY_SCHEME = "vg"
ENGINE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # fits SynthesisRecord.engine


def _hash_secret(secret: str) -> str:
    return crypto.hmac_sha256(settings.VOICEGATE_API_KEY_PEPPER, secret.encode())


def create_key(
    organization: Organization,
    *,
    name: str,
    actions: Iterable[str],
    purposes: Iterable[str] = (),
    profiles: Iterable[VoiceProfile] = (),
    expires_at: datetime | None = None,
    rate_limit_per_minute: int | None = None,
    audio_seconds_per_day: int | None = None,
    allowed_engines: Iterable[str] = (),
    actor: str,
    created_by: object = None,
) -> tuple[ApiKey, str]:
    """Mint a key. Returns the row and the full secret, which is never stored and cannot be shown again.
    Limits left unset follow the settings; no allowed engines means every engine the deployment offers."""
    actions, profiles, engines = sorted(set(actions)), list(profiles), sorted(set(allowed_engines))
    unknown = set(actions) - set(ApiKey.Action.values)
    if unknown:
        raise ValueError(f"unknown actions: {sorted(unknown)}")
    # Names only: a key may be minted for an engine the deployment turns on later.
    malformed = [e for e in engines if not ENGINE_NAME.fullmatch(e)]
    if malformed:
        raise ValueError(f"malformed engine names: {malformed}")
    foreign = [p.pk for p in profiles if p.owner.organization_id != organization.pk]
    if foreign:
        raise ValueError(f"profiles {foreign} belong to another organization")
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    full_key = f"{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(
            organization=organization,
            name=name,
            prefix=prefix,
            secret_hash=_hash_secret(full_key),
            actions=actions,
            purposes=sorted(set(purposes)),
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute or settings.VOICEGATE_DEFAULT_RATE_LIMIT_PER_MINUTE,
            audio_seconds_per_day=audio_seconds_per_day,
            allowed_engines=engines,
            created_by=created_by,
        )
        key.profiles.set(profiles)
        audit.record(
            "api_key.created",
            actor=actor,
            organization_id=organization.pk,
            target=key,
            data={
                "prefix": prefix, "actions": actions, "purposes": key.purposes, "profiles": [p.pk for p in profiles],
                "allowed_engines": engines, "rate_limit_per_minute": key.rate_limit_per_minute,
                "audio_seconds_per_day": audio_seconds_per_day,
            },
        )
    return key, full_key


def authenticate(presented: str) -> ApiKey | None:
    """The key the presented secret belongs to, or None. Does not judge expiry or revocation (policy does)."""
    parts = presented.split("_")
    if len(parts) < 3 or parts[0] != KEY_SCHEME:
        return None
    key = ApiKey.objects.select_related("organization").filter(prefix=f"{parts[0]}_{parts[1]}").first()
    # Hash even when the prefix is unknown, so timing does not reveal which prefixes exist.
    presented_hash = _hash_secret(presented)
    if key is None or not crypto.constant_time_equal(presented_hash, key.secret_hash):
        return None
    return key


def revoke(key: ApiKey, *, actor: str, reason: str) -> ApiKey:
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        key.refresh_from_db()
        if updated:
            audit.record(
                "api_key.revoked",
                actor=actor,
                organization_id=key.organization_id,
                target=key,
                data={"prefix": key.prefix, "reason_sha256": audit.text_digest(reason)},
            )
    return key
