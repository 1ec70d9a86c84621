"""The one synthesis gate. Every path that produces audio calls decide_synthesis() and obeys it.

decide_synthesis() gathers facts from the database; evaluate() turns facts into a decision and is
pure, so it can be tested over every combination. Deny by default: the answer is "allowed" only
when every check has passed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import abuse, audit, ratelimit
from governance.models import ApiKey, ConsentArtifact, IdentityVerification, VoiceProfile


class Reason(str, enum.Enum):
    ALLOWED = "allowed"
    KEY_MISSING = "key_missing"
    KEY_REVOKED = "key_revoked"
    KEY_EXPIRED = "key_expired"
    KEY_SUSPENDED = "key_suspended"
    KEY_ACTION_NOT_ALLOWED = "key_action_not_allowed"
    KEY_PROFILE_NOT_ALLOWED = "key_profile_not_allowed"
    KEY_PURPOSE_NOT_ALLOWED = "key_purpose_not_allowed"
    KEY_ENGINE_NOT_ALLOWED = "key_engine_not_allowed"
    OWNER_ERASED = "owner_erased"
    PROFILE_NOT_ACTIVE = "profile_not_active"
    IDENTITY_NOT_VERIFIED = "identity_not_verified"
    CONSENT_MISSING = "consent_missing"
    CONSENT_UNVERIFIED = "consent_unverified"
    CONSENT_NOT_YET_VALID = "consent_not_yet_valid"
    CONSENT_EXPIRED = "consent_expired"
    CONSENT_REVOKED = "consent_revoked"
    CONSENT_PURPOSE_NOT_COVERED = "consent_purpose_not_covered"
    AUDIO_QUOTA_EXCEEDED = "audio_quota_exceeded"
    RATE_LIMIT_EXCEEDED = "rate_limit_exceeded"


class ConsentState(str, enum.Enum):
    COVERING = "covering"
    MISSING = "missing"
    UNVERIFIED = "unverified"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"
    PURPOSE_NOT_COVERED = "purpose_not_covered"


_CONSENT_REFUSAL = {
    ConsentState.MISSING: Reason.CONSENT_MISSING,
    ConsentState.UNVERIFIED: Reason.CONSENT_UNVERIFIED,
    ConsentState.NOT_YET_VALID: Reason.CONSENT_NOT_YET_VALID,
    ConsentState.EXPIRED: Reason.CONSENT_EXPIRED,
    ConsentState.REVOKED: Reason.CONSENT_REVOKED,
    ConsentState.PURPOSE_NOT_COVERED: Reason.CONSENT_PURPOSE_NOT_COVERED,
}


@dataclass(frozen=True)
class SynthesisFacts:
    key_present: bool
    key_revoked: bool
    key_expired: bool
    key_suspended: bool
    key_allows_action: bool
    key_allows_profile: bool
    key_allows_purpose: bool
    key_allows_engine: bool
    owner_erased: bool
    profile_active: bool
    identity_verified: bool
    consent: ConsentState
    audio_budget_spent: bool
    # Known only by spending: decide_synthesis takes a request from the key's minute once all else passed.
    rate_limited: bool = False


@dataclass(frozen=True)
class Decision:
    reason: Reason
    retry_after_seconds: int = 0

    @property
    def allowed(self) -> bool:
        return self.reason is Reason.ALLOWED


def evaluate(facts: SynthesisFacts) -> Decision:
    """The rule itself: the first failing condition, in this order, is the refusal reason."""
    checks: list[tuple[bool, Reason]] = [
        (facts.key_present, Reason.KEY_MISSING),
        (not facts.key_revoked, Reason.KEY_REVOKED),
        (not facts.key_expired, Reason.KEY_EXPIRED),
        (not facts.key_suspended, Reason.KEY_SUSPENDED),
        (facts.key_allows_action, Reason.KEY_ACTION_NOT_ALLOWED),
        (facts.key_allows_profile, Reason.KEY_PROFILE_NOT_ALLOWED),
        (facts.key_allows_purpose, Reason.KEY_PURPOSE_NOT_ALLOWED),
        (facts.key_allows_engine, Reason.KEY_ENGINE_NOT_ALLOWED),
        (not facts.owner_erased, Reason.OWNER_ERASED),
        (facts.profile_active, Reason.PROFILE_NOT_ACTIVE),
        (facts.identity_verified, Reason.IDENTITY_NOT_VERIFIED),
        (facts.consent is ConsentState.COVERING, _CONSENT_REFUSAL.get(facts.consent, Reason.CONSENT_MISSING)),
        (not facts.audio_budget_spent, Reason.AUDIO_QUOTA_EXCEEDED),
        (not facts.rate_limited, Reason.RATE_LIMIT_EXCEEDED),
    ]
    for passed, refusal in checks:
        if passed is not True:
            return Decision(refusal)
    return Decision(Reason.ALLOWED)


def decide_synthesis(
    key: ApiKey | None, profile: VoiceProfile, purpose: str, text: str, engine: str | None = None
) -> Decision:
    """Decide whether `key` may synthesize `text` in `profile`'s voice for `purpose` with `engine` (None: the
    deployment's default engine), now; audit the answer."""
    now = timezone.now()
    engine = engine or settings.VOICEGATE_DEFAULT_ENGINE
    facts = gather_facts(key, profile, purpose, engine, now)
    decision = evaluate(facts)
    if decision.allowed:
        assert key is not None
        decision = _screen(key, facts, text, now)
    # One commit for everything the decision writes: the request spent, the spike check, the audit event. Rows
    # are taken in the order every writer takes them (minute window, day, then the audit chain head).
    with transaction.atomic():
        if decision.allowed:
            assert key is not None
            decision = _spend(key, facts, now)
        elif decision.reason is Reason.AUDIO_QUOTA_EXCEEDED:
            decision = replace(decision, retry_after_seconds=ratelimit.seconds_until_next_day(now))
        _audit(key, profile, purpose, engine, text, decision)
    return decision


def _screen(key: ApiKey, facts: SynthesisFacts, text: str, now: datetime) -> Decision:
    """Screen the text of a request that passed every other check; a flag may suspend the key, refusing this
    very request. Runs before, not inside, the decision's transaction: a new flag appends to the audit chain,
    and holding the chain head before the key's counter rows could deadlock against a concurrent request."""
    abuse.screen_text(key, text, now)
    return evaluate(replace(facts, key_suspended=key.suspended_at is not None))


def _spend(key: ApiKey, facts: SynthesisFacts, now: datetime) -> Decision:
    """Spend a request of the key's minute, then look at the day's usage."""
    retry_after = ratelimit.take_request(key, now)
    if retry_after:
        return replace(evaluate(replace(facts, rate_limited=True)), retry_after_seconds=retry_after)
    abuse.flag_usage_spike(key, now)  # a spike suspends (if so configured) from the next request on
    return evaluate(facts)


def gather_facts(key: ApiKey | None, profile: VoiceProfile, purpose: str, engine: str, now: datetime) -> SynthesisFacts:
    owner = profile.owner
    return SynthesisFacts(
        key_present=key is not None,
        key_revoked=key is not None and key.revoked_at is not None,
        key_expired=key is not None and key.expires_at is not None and key.expires_at <= now,
        key_suspended=key is not None and key.suspended_at is not None,
        key_allows_action=key is not None and ApiKey.Action.SYNTHESIZE in key.actions,
        key_allows_profile=key is not None
        and key.organization_id == owner.organization_id
        and key.profiles.filter(pk=profile.pk).exists(),
        key_allows_purpose=key is not None and purpose in key.purposes,
        key_allows_engine=key is not None and key.allows_engine(engine),
        owner_erased=owner.is_erased,
        profile_active=profile.status == VoiceProfile.Status.ACTIVE,
        identity_verified=any(
            v.is_valid_at(now) for v in IdentityVerification.objects.filter(owner=owner)
        ),
        consent=consent_state(list(profile.consents.all()), purpose, now),
        audio_budget_spent=key is not None and ratelimit.audio_budget_spent(key, now),
    )


def consent_state(consents: list[ConsentArtifact], purpose: str, now: datetime) -> ConsentState:
    """Summarize the profile's consents for one purpose; the most specific obstacle wins."""
    if any(c.covers(purpose, now) for c in consents):
        return ConsentState.COVERING
    if not consents:
        return ConsentState.MISSING
    for_purpose = [c for c in consents if purpose in c.purposes]
    if not for_purpose:
        return ConsentState.PURPOSE_NOT_COVERED
    live = [c for c in for_purpose if c.revoked_at is None]
    if not live:
        return ConsentState.REVOKED
    verified = [c for c in live if c.verification_status == ConsentArtifact.Verification.VERIFIED]
    if not verified:
        return ConsentState.UNVERIFIED
    if any(c.valid_from > now for c in verified):
        return ConsentState.NOT_YET_VALID
    return ConsentState.EXPIRED


def _audit(key: ApiKey | None, profile: VoiceProfile, purpose: str, engine: str, text: str, decision: Decision) -> None:
    audit.record(
        "synthesis.decision",
        actor=audit.actor_for_key(key) if key is not None else "anonymous",
        organization_id=profile.owner.organization_id,
        target=profile,
        data={
            "allowed": decision.allowed,
            "reason": decision.reason.value,
            "purpose": purpose,
            "engine": engine,
            "text_sha256": audit.sha256_hex(text),
            "key_prefix": key.prefix if key is not None else None,
        },
    )
