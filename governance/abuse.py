"""Abuse controls: flags for officer review, and the suspension of keys.

Two things raise a flag. A key's usage today far above its own baseline (`flag_usage_spike`, after each
counted request and each charge of audio), and a synthesis text that matches a fraud pattern (`screen_text`,
called by the gate before a request is allowed).

A fraud-pattern text is allowed and flagged, not refused: the patterns are broad (a bank's own support line
may well say "your verification code is ..."), so a regex alone is not enough to deny a customer's traffic.
An officer reviews the flag; a deployment that prefers to stop first and ask later sets
VOICEGATE_SUSPEND_FLAGGED_KEYS, and then the flag suspends the key at once, so the very request that raised
it is refused (key_suspended), as is everything after it until an officer reinstates the key.

Flags never hold the text: only its hash and the names of the patterns that matched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from statistics import fmean

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import audit, ratelimit
from governance.errors import GovernanceError
from governance.models import AbuseFlag, ApiKey, KeyDailyUsage

SYSTEM_ACTOR = "system:abuse"

# Matched case-insensitively against the text as submitted. VOICEGATE_FRAUD_PATTERNS replaces this table.
DEFAULT_FRAUD_PATTERNS: dict[str, str] = {
    "payment_instruction": (
        r"\b(?:wire|transfer|send|deposit|pay|move)\b.{0,80}?\b(?:to|into)\b.{0,40}?"
        r"\b(?:account|iban|bank|routing|wallet|sort code)\b"
    ),
    "account_number": (
        r"\b[a-z]{2}\d{2}(?:[ -]?[a-z0-9]{4}){3,7}(?:[ -]?[a-z0-9]{1,4})?\b"  # IBAN
        r"|\b(?:account|acct|routing|sort code)\s*(?:number|no\.?|#)?\s*(?:is\s*)?[:#]?\s*\d(?:[\s-]?\d){5,}"
    ),
    "one_time_code": (
        r"\b(?:verification|security|one[- ]time|otp|authentication|login|access|confirmation)\s+"
        r"(?:code|pin|passcode)\b.{0,20}?\d(?:[\s-]?\d){3,7}"
        r"|\bcode\s+is\s*:?\s*\d(?:[\s-]?\d){3,7}\b"
    ),
    "credentials": r"\b(?:password|passcode|passphrase|pin number|login credentials|security answer)\b",
}


class FlagAlreadyReviewed(GovernanceError):
    code = "flag_already_reviewed"


# ---- the rules, pure --------------------------------------------------------------------------------


def matching_patterns(text: str, patterns: Mapping[str, str]) -> list[str]:
    """Names of the patterns the text matches, sorted."""
    return sorted(name for name, pattern in patterns.items() if re.search(pattern, text, re.IGNORECASE | re.DOTALL))


def is_spike(today: float, previous_days: list[float], *, factor: float, minimum: float) -> bool:
    """Today is a spike when it reaches the minimum volume and exceeds factor x the mean of the previous days.
    A key with no previous day has no baseline yet; its absolute limits still apply."""
    return bool(previous_days) and today >= minimum and today > factor * fmean(previous_days)


# ---- raising flags ----------------------------------------------------------------------------------


def fraud_patterns() -> dict[str, str]:
    configured = settings.VOICEGATE_FRAUD_PATTERNS
    return DEFAULT_FRAUD_PATTERNS if configured is None else configured


def screen_text(key: ApiKey, text: str, now: datetime) -> AbuseFlag | None:
    """Flag the key if the text matches a fraud pattern; the same text already awaiting review adds nothing.
    May suspend the key (VOICEGATE_SUSPEND_FLAGGED_KEYS); `key.suspended_at` then says so."""
    matched = matching_patterns(text, fraud_patterns())
    if not matched:
        return None
    text_sha256 = audit.sha256_hex(text)
    if _awaiting_review(key, text_sha256):  # the usual case for a repeated text: nothing to write, no transaction
        return None
    with transaction.atomic():
        if _awaiting_review(key, text_sha256):  # asked again inside the transaction that writes the flag
            return None
        return _raise(key, AbuseFlag.Kind.FRAUD_PATTERN, {"patterns": matched}, now, text_sha256=text_sha256)


def _awaiting_review(key: ApiKey, text_sha256: str) -> bool:
    return AbuseFlag.objects.filter(
        api_key=key, kind=AbuseFlag.Kind.FRAUD_PATTERN, text_sha256=text_sha256, status=AbuseFlag.Status.OPEN
    ).exists()


def flag_usage_spike(key: ApiKey, now: datetime) -> list[AbuseFlag]:
    """Flag each measure (requests, audio seconds) whose total today is a spike over the key's trailing daily
    mean; at most one flag per key, measure and day."""
    today = ratelimit.utc_day(now)
    with transaction.atomic(savepoint=False):  # a failure here fails the caller's transaction: no savepoint needed
        # Locking today's row serializes the checks of concurrent requests of this key, so one spike is one flag.
        usage = KeyDailyUsage.objects.select_for_update().filter(api_key=key, day=today).first()
        if usage is None or not any(getattr(usage, m) >= minimum for m, minimum in _minimums().items()):
            return []  # the common case, decided without reading the history
        spikes = _spikes(usage, _previous_days(key, today))
        return [
            _raise(key, AbuseFlag.Kind.USAGE_SPIKE, detail, now)
            for measure, detail in spikes.items()
            if not _spike_flagged(key, measure, today)
        ]


def _minimums() -> dict[str, float]:
    return {"requests": settings.VOICEGATE_ANOMALY_MIN_REQUESTS, "audio_seconds": settings.VOICEGATE_ANOMALY_MIN_AUDIO_SECONDS}


def _spikes(today: KeyDailyUsage, previous: list[KeyDailyUsage]) -> dict[str, dict[str, object]]:
    """The flag detail of each measure that spiked today: the figures an officer needs, no more."""
    factor, spikes = settings.VOICEGATE_ANOMALY_FACTOR, {}
    for measure, minimum in _minimums().items():
        total, baseline = float(getattr(today, measure)), [float(getattr(day, measure)) for day in previous]
        if is_spike(total, baseline, factor=factor, minimum=minimum):
            spikes[measure] = {
                "measure": measure, "day": today.day.isoformat(), "today": round(total, 3),
                "baseline_mean": round(fmean(baseline), 3), "baseline_days": len(baseline), "factor": factor,
            }
    return spikes


def _previous_days(key: ApiKey, today: date) -> list[KeyDailyUsage]:
    """The key's usage on each baseline day before today (zero where it made no request), counting only days
    since the key was created: a week-old key is judged against its week."""
    age_days = (today - ratelimit.utc_day(key.created_at)).days
    days = [today - timedelta(days=n) for n in range(1, min(settings.VOICEGATE_ANOMALY_BASELINE_DAYS, age_days) + 1)]
    recorded = {u.day: u for u in KeyDailyUsage.objects.filter(api_key=key, day__in=days)}
    return [recorded.get(day) or KeyDailyUsage(api_key=key, day=day) for day in days]


def _spike_flagged(key: ApiKey, measure: str, today: date) -> bool:
    return AbuseFlag.objects.filter(
        api_key=key, kind=AbuseFlag.Kind.USAGE_SPIKE, detail__measure=measure, detail__day=today.isoformat()
    ).exists()


def _raise(key: ApiKey, kind: str, detail: dict[str, object], now: datetime, *, text_sha256: str = "") -> AbuseFlag:
    suspended = settings.VOICEGATE_SUSPEND_FLAGGED_KEYS and _mark_suspended(key, True)
    flag = AbuseFlag.objects.create(
        api_key=key, kind=kind, detail=detail, text_sha256=text_sha256, key_suspended_automatically=suspended, created_at=now
    )
    audit.record(
        "abuse.flagged",
        actor=SYSTEM_ACTOR,
        organization_id=key.organization_id,
        target=flag,
        data={"key_prefix": key.prefix, "kind": kind, "detail": detail, "text_sha256": text_sha256, "suspends_key": suspended},
    )
    if suspended:
        _record_key_change(key, "suspended", SYSTEM_ACTOR, flag)
    return flag


# ---- officers' review ---------------------------------------------------------------------------------
# Every writer here changes its rows first and appends to the audit chain last: the chain head is locked
# until commit, so taking it before a key or flag row could deadlock against a writer holding that row.


def suspend_key(key: ApiKey, *, actor: str, flag: AbuseFlag | None = None) -> ApiKey:
    """Suspend the key (the gate refuses it as key_suspended); an open flag given as the cause is upheld."""
    return _set_suspension(key, True, actor, flag, AbuseFlag.Status.UPHELD)


def reinstate_key(key: ApiKey, *, actor: str, flag: AbuseFlag | None = None) -> ApiKey:
    """Lift the key's suspension; an open flag given as the cause is dismissed (the officer found no abuse)."""
    return _set_suspension(key, False, actor, flag, AbuseFlag.Status.DISMISSED)


def _set_suspension(key: ApiKey, suspend: bool, actor: str, flag: AbuseFlag | None, verdict: str) -> ApiKey:
    with transaction.atomic():
        changed = _mark_suspended(key, suspend)
        reviewed = flag if flag is not None and _mark_reviewed(flag, verdict, actor) else None
        if changed:
            _record_key_change(key, "suspended" if suspend else "reinstated", actor, flag)
        if reviewed is not None:
            _record_review(reviewed, actor)
    return key


def dismiss_flag(flag: AbuseFlag, *, actor: str) -> AbuseFlag:
    """The officer reviewed the flag and found nothing to act on. The key's state is left as it is."""
    with transaction.atomic():
        if not _mark_reviewed(flag, AbuseFlag.Status.DISMISSED, actor):
            raise FlagAlreadyReviewed(f"flag #{flag.pk} was already reviewed ({flag.status})")
        _record_review(flag, actor)
    return flag


def _mark_suspended(key: ApiKey, suspended: bool) -> bool:
    """Set or clear the key's suspension; False when it already was so (nothing happened, nothing to record)."""
    changed = ApiKey.objects.filter(pk=key.pk, suspended_at__isnull=suspended).update(
        suspended_at=timezone.now() if suspended else None
    )
    key.refresh_from_db(fields=["suspended_at"])
    return bool(changed)


def _mark_reviewed(flag: AbuseFlag, status: str, actor: str) -> bool:
    """Move an open flag to its review outcome; False when it was already reviewed."""
    closed = AbuseFlag.objects.filter(pk=flag.pk, status=AbuseFlag.Status.OPEN).update(
        status=status, reviewed_by=actor, reviewed_at=timezone.now()
    )
    flag.refresh_from_db()
    return bool(closed)


def _record_key_change(key: ApiKey, change: str, actor: str, flag: AbuseFlag | None) -> None:
    audit.record(f"api_key.{change}", actor=actor, organization_id=key.organization_id, target=key,
                 data={"prefix": key.prefix, "flag": flag.pk if flag else None})


def _record_review(flag: AbuseFlag, actor: str) -> None:
    audit.record(f"abuse.flag_{flag.status}", actor=actor, organization_id=flag.api_key.organization_id, target=flag,
                 data={"kind": flag.kind, "key_prefix": flag.api_key.prefix})
