"""Per-key limits, counted in the database so that every web node and worker spends the same budget.

Two limits: requests per minute (a fixed one-minute window) and seconds of audio per UTC day. Each count is
one conditional `UPDATE ... SET n = n + 1`; the database serializes concurrent updates of a row (PostgreSQL
re-checks the WHERE clause against the row a concurrent writer committed; SQLite takes the write lock), so
no two requests can both take the last unit, on any number of processes.

Audio is charged when a synthesis closes, because only then is its length known: a request is refused once
the day's budget is spent, so the request that crosses the budget finishes (a day may overrun by the audio
of the requests in flight when it ran out).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone as dt_timezone

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Q, QuerySet, Value, When

from governance.models import ApiKey, KeyDailyUsage, KeyMinuteWindow

WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int
    audio_seconds_per_day: int


def limits_for(key: ApiKey) -> Limits:
    """The key's own limits; an unset audio budget means the deployment's default."""
    audio = key.audio_seconds_per_day or settings.VOICEGATE_DEFAULT_AUDIO_SECONDS_PER_DAY
    return Limits(key.rate_limit_per_minute, audio)


def utc_day(now: datetime) -> date:
    return now.astimezone(dt_timezone.utc).date()


def seconds_until_next_day(now: datetime) -> int:
    midnight = datetime.combine(utc_day(now) + timedelta(days=1), datetime.min.time(), tzinfo=dt_timezone.utc)
    return _seconds_until(midnight, now)


def take_request(key: ApiKey, now: datetime) -> int:
    """Spend one request of the key's minute. Returns 0 when within the limit (and counts the request in the
    day's usage), else the seconds until the next window opens."""
    window = _window_start(now)
    with transaction.atomic(savepoint=False):  # inside the decision's transaction, one more savepoint buys nothing
        if not _spend_in_window(key.pk, window, limits_for(key).requests_per_minute):
            return _seconds_until(window + WINDOW, now)
        _add_to_day(key.pk, utc_day(now), requests=1)
    return 0


def audio_budget_spent(key: ApiKey, now: datetime) -> bool:
    used = KeyDailyUsage.objects.filter(api_key=key, day=utc_day(now)).values_list("audio_seconds", flat=True).first()
    return (used or 0.0) >= limits_for(key).audio_seconds_per_day


def charge_audio(key: ApiKey, seconds: float, now: datetime) -> None:
    """Add delivered audio to the key's day. Call inside the transaction that closes the synthesis record."""
    if seconds > 0:
        _add_to_day(key.pk, utc_day(now), audio_seconds=seconds)


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _window_start(now: datetime) -> datetime:
    return now.astimezone(dt_timezone.utc).replace(second=0, microsecond=0)


def _spend_in_window(key_id: int, window: datetime, limit: int) -> bool:
    rows = KeyMinuteWindow.objects.filter(api_key_id=key_id)
    if _conditional_increment(rows, window, limit):
        return True
    # Over the limit, or the key's first request ever. Asking which would race with a concurrent first request
    # that creates the row meanwhile; instead make sure the row exists (a no-op if it does) and try once more.
    KeyMinuteWindow.objects.bulk_create([KeyMinuteWindow(api_key_id=key_id, window_start=window)], ignore_conflicts=True)
    return bool(_conditional_increment(rows, window, limit))


def _conditional_increment(rows: QuerySet[KeyMinuteWindow], window: datetime, limit: int) -> int:
    # One statement: an older window restarts at 1; the current one counts up only while under the limit.
    # A node whose clock lags sees a newer window_start and counts into it rather than moving it back.
    stale = Q(window_start__lt=window)
    return rows.filter(stale | Q(requests__lt=limit)).update(
        requests=Case(When(stale, then=Value(1)), default=F("requests") + 1),
        window_start=Case(When(stale, then=Value(window)), default=F("window_start")),
    )


def _add_to_day(key_id: int, day: date, *, requests: int = 0, audio_seconds: float = 0.0) -> None:
    rows = KeyDailyUsage.objects.filter(api_key_id=key_id, day=day)
    increments = {"requests": F("requests") + requests, "audio_seconds": F("audio_seconds") + audio_seconds}
    if rows.update(**increments):
        return
    KeyDailyUsage.objects.bulk_create([KeyDailyUsage(api_key_id=key_id, day=day)], ignore_conflicts=True)
    rows.update(**increments)
