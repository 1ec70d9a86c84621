"""Per-key limits: requests per minute and audio seconds per UTC day, counted in the database so that every
process spends the same budget, and refused with 429, Retry-After and the reason."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from governance import biometrics, ratelimit
from governance.models import ApiKey, BiometricBlob, KeyDailyUsage
from governance.policy import Reason, decide_synthesis
from synthesis import gateway
from synthesis.models import FittedVoice, SynthesisRecord
from tests.concurrency_helpers import on_separate_connections
from tests.factories import PURPOSE, authorized_setup, make_key

pytestmark = pytest.mark.django_db
TEXT = "Your appointment is confirmed for Tuesday."
NOON = datetime(2031, 5, 6, 12, 0, 30, tzinfo=dt_timezone.utc)


def _decide(a):
    return decide_synthesis(a.key, a.profile, PURPOSE, TEXT)


def _audio_used_today(key: ApiKey) -> float:
    return KeyDailyUsage.objects.get(api_key=key, day=ratelimit.utc_day(datetime.now(dt_timezone.utc))).audio_seconds


# ---- requests per minute -------------------------------------------------------------------------------


def test_key_over_requests_per_minute_is_refused_until_the_window_ends():
    a = authorized_setup(rate_limit_per_minute=2)
    assert [ratelimit.take_request(a.key, NOON) for _ in range(2)] == [0, 0]
    assert ratelimit.take_request(a.key, NOON) == 30  # the window opened at 12:00:00 and closes at 12:01:00
    assert ratelimit.take_request(a.key, NOON + timedelta(seconds=30)) == 0


def test_a_node_whose_clock_lags_counts_into_the_newer_window_instead_of_reopening_an_old_one():
    a = authorized_setup(rate_limit_per_minute=1)
    assert ratelimit.take_request(a.key, NOON) == 0
    assert ratelimit.take_request(a.key, NOON - timedelta(minutes=1)) > 0


def test_requests_per_minute_default_comes_from_the_setting(settings):
    settings.VOICEGATE_DEFAULT_RATE_LIMIT_PER_MINUTE = 7
    a = authorized_setup()
    assert ratelimit.limits_for(a.key).requests_per_minute == 7


def test_only_allowed_requests_are_counted_in_the_days_usage():
    a = authorized_setup()
    _decide(a), _decide(a)
    decide_synthesis(a.key, a.profile, "not-on-the-key", TEXT)
    assert KeyDailyUsage.objects.get(api_key=a.key).requests == 2


# ---- audio seconds per day -------------------------------------------------------------------------------


def test_key_over_daily_audio_budget_is_refused_with_retry_after_until_utc_midnight():
    a = authorized_setup(audio_seconds_per_day=60)
    ratelimit.charge_audio(a.key, 60.0, datetime.now(dt_timezone.utc))
    refused = _decide(a)
    assert refused.reason is Reason.AUDIO_QUOTA_EXCEEDED
    assert 1 <= refused.retry_after_seconds <= 24 * 3600 + 1


def test_the_request_that_crosses_the_budget_was_allowed_and_the_next_one_is_refused():
    a = authorized_setup(audio_seconds_per_day=60)
    now = datetime.now(dt_timezone.utc)
    ratelimit.charge_audio(a.key, 59.0, now)
    assert _decide(a).allowed
    ratelimit.charge_audio(a.key, 8.5, now)  # that request's audio, charged when its record closed
    assert _audio_used_today(a.key) == pytest.approx(67.5)
    assert _decide(a).reason is Reason.AUDIO_QUOTA_EXCEEDED


def test_audio_budget_defaults_to_the_setting_and_a_key_may_set_its_own(settings):
    settings.VOICEGATE_DEFAULT_AUDIO_SECONDS_PER_DAY = 100
    default, own = authorized_setup(), authorized_setup(audio_seconds_per_day=500)
    now = datetime.now(dt_timezone.utc)
    for key in (default.key, own.key):
        ratelimit.charge_audio(key, 100.0, now)
    assert _decide(default).reason is Reason.AUDIO_QUOTA_EXCEEDED
    assert _decide(own).allowed


def test_the_audio_budget_is_per_utc_day():
    a = authorized_setup(audio_seconds_per_day=10)
    ratelimit.charge_audio(a.key, 10.0, NOON)
    assert ratelimit.audio_budget_spent(a.key, NOON.replace(hour=23, minute=59))
    assert not ratelimit.audio_budget_spent(a.key, NOON + timedelta(days=1))
    assert ratelimit.seconds_until_next_day(NOON.replace(hour=23, minute=59, second=30)) == 30


def test_a_refusal_for_the_audio_budget_spends_no_request():
    a = authorized_setup(audio_seconds_per_day=10, rate_limit_per_minute=1)
    ratelimit.charge_audio(a.key, 10.0, datetime.now(dt_timezone.utc))
    assert _decide(a).reason is Reason.AUDIO_QUOTA_EXCEEDED
    assert KeyDailyUsage.objects.get(api_key=a.key).requests == 0


def test_audio_budget_refusal_is_429_with_retry_after_and_its_reason(api, settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup(audio_seconds_per_day=30)
    ratelimit.charge_audio(a.key, 30.0, datetime.now(dt_timezone.utc))
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {a.secret}")
    response = api.post("/api/v1/synthesize", {"profile": a.profile.pk, "text": TEXT, "purpose": PURPOSE}, format="json")
    assert response.status_code == 429, response.content
    assert response.json()["error"]["code"] == "audio_quota_exceeded"
    assert int(response["Retry-After"]) >= 1


# ---- atomic across connections (threads here; processes share the database the same way) ------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_from_many_connections_get_exactly_the_limit():
    a = authorized_setup(rate_limit_per_minute=5)
    now = datetime.now(dt_timezone.utc)
    results = on_separate_connections(12, lambda: ratelimit.take_request(ApiKey.objects.get(pk=a.key.pk), now))
    assert sorted(results).count(0) == 5 and len(results) == 12
    assert KeyDailyUsage.objects.get(api_key=a.key).requests == 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_audio_charges_from_many_connections_all_add_up():
    a = authorized_setup()
    now = datetime.now(dt_timezone.utc)
    on_separate_connections(10, lambda: ratelimit.charge_audio(ApiKey.objects.get(pk=a.key.pk), 1.5, now))
    assert KeyDailyUsage.objects.get(api_key=a.key).audio_seconds == pytest.approx(15.0)


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_of_a_new_key_create_one_window_and_count_each():
    org = authorized_setup().organization
    key, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE], rate_limit_per_minute=100)
    now = datetime.now(dt_timezone.utc)
    results = on_separate_connections(8, lambda: ratelimit.take_request(ApiKey.objects.get(pk=key.pk), now))
    assert results == [0] * 8
    assert KeyDailyUsage.objects.get(api_key=key).requests == 8



# ---- charged by the gateway --------------------------------------------------------------------------------


def test_delivered_audio_is_charged_to_the_keys_day_when_the_record_closes(settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup()
    state = biometrics.store(a.owner, BiometricBlob.Kind.VOICE_STATE, b"")  # the unfitted base voice will do
    FittedVoice.objects.create(profile=a.profile, engine="fast", state=state)
    b"".join(gateway.start(a.key, a.profile, TEXT, PURPOSE).pcm16)
    record = SynthesisRecord.objects.get()
    assert record.duration_s > 0.5
    assert _audio_used_today(a.key) == pytest.approx(record.duration_s)
