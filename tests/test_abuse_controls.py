"""Abuse controls: fraud-pattern texts and usage spikes raise flags for officers (hash, never text), a flag can
suspend its key by setting, and a suspended key is refused until an officer reinstates it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from governance import abuse, ratelimit
from governance.models import AbuseFlag, ApiKey, AuditEvent, KeyDailyUsage
from governance.policy import Reason, decide_synthesis
from tests.api_helpers import as_key, error_of
from tests.concurrency_helpers import on_separate_connections
from tests.factories import PURPOSE, authorized_setup
from voicegate import env

pytestmark = pytest.mark.django_db
BENIGN = "Your appointment is confirmed for Tuesday."
FRAUD = "Hi, it's me. Please wire the deposit to account 4471 0093 2281 today."


def _decide(a, text=BENIGN):
    return decide_synthesis(a.key, a.profile, PURPOSE, text)


def _flags(a, kind=None):
    flags = AbuseFlag.objects.filter(api_key=a.key)
    return list(flags.filter(kind=kind) if kind else flags)


# ---- fraud patterns (pure) -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, pattern", [
    ("Please wire the money to my new account before noon.", "payment_instruction"),
    ("Transfer twenty thousand euros into the following IBAN.", "payment_instruction"),
    ("The IBAN is DE89 3704 0044 0532 0130 00.", "account_number"),
    ("My account number is 12345678.", "account_number"),
    ("Your verification code is 482913.", "one_time_code"),
    ("Read me the one-time code: 4 8 2 9.", "one_time_code"),
    ("I forgot my password, can you tell me yours?", "credentials"),
])
def test_default_patterns_catch_payment_instructions_account_numbers_codes_and_credentials(text, pattern):
    assert pattern in abuse.matching_patterns(text, abuse.DEFAULT_FRAUD_PATTERNS)


@pytest.mark.parametrize("text", [
    BENIGN,
    "Your appointment with Doctor Patel is confirmed for Tuesday morning. Please arrive ten minutes early.",
    "Thanks for calling. Your order 1234 ships on the 5th of June.",
    "Send your questions to our team and we will get back to you.",
    "Welcome to the support line. Press 1 for billing.",
])
def test_ordinary_texts_match_no_fraud_pattern(text):
    assert abuse.matching_patterns(text, abuse.DEFAULT_FRAUD_PATTERNS) == []


def test_configured_patterns_replace_the_defaults(settings):
    a = authorized_setup()
    settings.VOICEGATE_FRAUD_PATTERNS = {"gift_cards": r"\bgift cards?\b"}
    _decide(a, FRAUD)
    _decide(a, "Buy three gift cards and read me the numbers.")
    [flag] = _flags(a)
    assert flag.detail == {"patterns": ["gift_cards"]}


# ---- fraud-pattern flags ------------------------------------------------------------------------------------


def test_fraud_text_is_allowed_and_flagged_with_its_hash_never_its_text():
    a = authorized_setup()
    assert _decide(a, FRAUD).allowed
    [flag] = _flags(a, AbuseFlag.Kind.FRAUD_PATTERN)
    assert flag.status == AbuseFlag.Status.OPEN and "payment_instruction" in flag.detail["patterns"]
    assert len(flag.text_sha256) == 64
    [event] = AuditEvent.objects.filter(action="abuse.flagged")
    assert event.data["text_sha256"] == flag.text_sha256 and event.data["suspends_key"] is False
    assert "4471" not in str(flag.detail) + str(event.data)


def test_benign_text_raises_no_flag():
    a = authorized_setup()
    _decide(a)
    assert _flags(a) == []


def test_the_same_fraud_text_awaiting_review_is_flagged_once():
    a = authorized_setup()
    _decide(a, FRAUD), _decide(a, FRAUD)
    assert len(_flags(a)) == 1
    _decide(a, FRAUD + " Thanks.")
    assert len(_flags(a)) == 2


def test_a_refused_request_is_not_screened():
    a = authorized_setup(purposes=["marketing"])
    assert _decide(a, FRAUD).reason is Reason.KEY_PURPOSE_NOT_ALLOWED
    assert _flags(a) == []


def test_with_suspension_on_a_fraud_text_suspends_the_key_and_is_itself_refused(settings):
    settings.VOICEGATE_SUSPEND_FLAGGED_KEYS = True
    a = authorized_setup()
    assert _decide(a, FRAUD).reason is Reason.KEY_SUSPENDED
    [flag] = _flags(a)
    assert flag.key_suspended_automatically
    assert _decide(a).reason is Reason.KEY_SUSPENDED
    assert AuditEvent.objects.filter(action="api_key.suspended", actor=abuse.SYSTEM_ACTOR).count() == 1


def test_a_suspended_key_is_refused_until_an_officer_reinstates_it():
    a = authorized_setup()
    abuse.suspend_key(a.key, actor="user:1:officer")
    assert _decide(a).reason is Reason.KEY_SUSPENDED
    abuse.reinstate_key(a.key, actor="user:1:officer")
    assert _decide(a).allowed
    logged = AuditEvent.objects.filter(action__in=["api_key.suspended", "api_key.reinstated"]).values_list("action", flat=True)
    assert list(logged) == ["api_key.suspended", "api_key.reinstated"]


def test_a_suspended_key_gets_403_key_suspended_from_the_synthesis_api(api, settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup()
    abuse.suspend_key(a.key, actor="test")
    response = as_key(api, a.secret).post("/api/v1/synthesize", {"profile": a.profile.pk, "text": BENIGN, "purpose": PURPOSE}, format="json")
    error_of(response, 403, "key_suspended")


def test_a_suspended_key_is_refused_by_every_other_endpoint_too(api):
    a = authorized_setup()
    abuse.suspend_key(a.key, actor="test")
    assert "suspended" in error_of(as_key(api, a.secret).get("/api/v1/profiles/"), 401)["message"]


# ---- usage spikes ----------------------------------------------------------------------------------------


def _key_with_history(days_old: int, daily_requests: int, daily_audio: float = 0.0, **key_kwargs):
    a = authorized_setup(**key_kwargs)
    ApiKey.objects.filter(pk=a.key.pk).update(created_at=timezone.now() - timedelta(days=days_old))
    a.key.refresh_from_db()
    today = ratelimit.utc_day(timezone.now())
    for n in range(1, days_old + 1):
        KeyDailyUsage.objects.create(api_key=a.key, day=today - timedelta(days=n), requests=daily_requests, audio_seconds=daily_audio)
    return a


@pytest.fixture
def spike_settings(settings):
    settings.VOICEGATE_ANOMALY_FACTOR = 3.0
    settings.VOICEGATE_ANOMALY_BASELINE_DAYS = 7
    settings.VOICEGATE_ANOMALY_MIN_REQUESTS = 10
    settings.VOICEGATE_ANOMALY_MIN_AUDIO_SECONDS = 60
    return settings


@pytest.mark.parametrize("today, previous, spike", [
    (31, [10, 10, 10], True),
    (30, [10, 10, 10], False),  # must exceed factor x mean
    (9, [0, 0, 0], False),  # under the minimum volume
    (500, [], False),  # no baseline yet
    (12, [0, 0, 0], True),
])
def test_a_spike_exceeds_factor_times_the_trailing_mean_at_minimum_volume(today, previous, spike):
    assert abuse.is_spike(today, previous, factor=3.0, minimum=10) is spike


def test_requests_far_above_the_keys_baseline_are_flagged_once_a_day(spike_settings):
    a = _key_with_history(days_old=7, daily_requests=5)
    for _ in range(16):  # 3 x 5 = 15 is the most that is not a spike
        assert _decide(a).allowed
    [flag] = _flags(a, AbuseFlag.Kind.USAGE_SPIKE)
    assert flag.detail["measure"] == "requests" and flag.detail["today"] == 16 and flag.detail["baseline_mean"] == 5
    for _ in range(5):
        _decide(a)
    assert len(_flags(a)) == 1


def test_usage_within_the_baseline_raises_no_flag(spike_settings):
    a = _key_with_history(days_old=7, daily_requests=20)
    for _ in range(25):
        _decide(a)
    assert _flags(a) == []


def test_audio_far_above_the_keys_baseline_is_flagged_when_it_is_charged(spike_settings):
    a = _key_with_history(days_old=3, daily_requests=1, daily_audio=20.0)
    now = timezone.now()
    ratelimit.charge_audio(a.key, 60.0, now)
    assert abuse.flag_usage_spike(a.key, now) == []  # 60 s is not more than 3 x 20 s
    ratelimit.charge_audio(a.key, 1.0, now)
    [flag] = abuse.flag_usage_spike(a.key, now)
    assert flag.detail["measure"] == "audio_seconds" and flag.detail["today"] == 61.0


def test_a_young_key_is_judged_against_the_days_it_has_existed_only(spike_settings):
    # Two days of 10 requests: the mean is 10, not 20/7, so 25 requests today is no spike.
    a = _key_with_history(days_old=2, daily_requests=10)
    for _ in range(25):
        _decide(a)
    assert _flags(a) == []


def test_a_key_on_its_first_day_has_no_baseline_to_spike_over(spike_settings):
    a = authorized_setup()
    for _ in range(30):
        _decide(a)
    assert _flags(a) == []


def test_with_suspension_on_a_spike_suspends_the_key_from_the_next_request(spike_settings):
    spike_settings.VOICEGATE_SUSPEND_FLAGGED_KEYS = True
    a = _key_with_history(days_old=7, daily_requests=2)
    results = [_decide(a).reason for _ in range(12)]  # the 10th request is over 3 x 2 and at the minimum of 10
    assert results == [Reason.ALLOWED] * 10 + [Reason.KEY_SUSPENDED] * 2
    assert _flags(a)[0].key_suspended_automatically


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_that_cross_the_spike_together_raise_one_flag(spike_settings):
    a = _key_with_history(days_old=7, daily_requests=1)
    now = timezone.now()
    KeyDailyUsage.objects.create(api_key=a.key, day=ratelimit.utc_day(now), requests=50)
    flags = on_separate_connections(6, lambda: abuse.flag_usage_spike(ApiKey.objects.get(pk=a.key.pk), now))
    assert sum(len(f) for f in flags) == 1
    assert len(_flags(a, AbuseFlag.Kind.USAGE_SPIKE)) == 1


# ---- officers' review (services; the admin's actions call these) ------------------------------------------


def _open_flag() -> AbuseFlag:
    a = authorized_setup()
    _decide(a, FRAUD)
    return AbuseFlag.objects.get(api_key=a.key)


def test_dismissing_a_flag_records_who_and_leaves_the_key_alone():
    flag = _open_flag()
    abuse.dismiss_flag(flag, actor="user:1:officer")
    assert (flag.status, flag.reviewed_by) == (AbuseFlag.Status.DISMISSED, "user:1:officer")
    assert flag.api_key.suspended_at is None
    assert AuditEvent.objects.filter(action="abuse.flag_dismissed", target_id=str(flag.pk)).exists()


def test_a_reviewed_flag_cannot_be_dismissed_again():
    flag = _open_flag()
    abuse.suspend_key(flag.api_key, actor="user:1:officer", flag=flag)
    with pytest.raises(abuse.FlagAlreadyReviewed):
        abuse.dismiss_flag(flag, actor="user:1:officer")
    assert flag.status == AbuseFlag.Status.UPHELD


def test_suspending_from_a_flag_upholds_it_and_reinstating_from_an_open_one_dismisses_it():
    upheld, dismissed = _open_flag(), _open_flag()
    abuse.suspend_key(upheld.api_key, actor="user:1:officer", flag=upheld)
    abuse.suspend_key(dismissed.api_key, actor=abuse.SYSTEM_ACTOR)
    abuse.reinstate_key(dismissed.api_key, actor="user:1:officer", flag=dismissed)
    assert upheld.status == AbuseFlag.Status.UPHELD and upheld.api_key.suspended_at is not None
    assert dismissed.status == AbuseFlag.Status.DISMISSED and dismissed.api_key.suspended_at is None


def test_suspending_an_already_suspended_key_writes_one_suspension():
    flag = _open_flag()
    abuse.suspend_key(flag.api_key, actor="test")
    abuse.suspend_key(flag.api_key, actor="test", flag=flag)
    assert AuditEvent.objects.filter(action="api_key.suspended").count() == 1
    assert flag.status == AbuseFlag.Status.UPHELD



# ---- the patterns setting ----------------------------------------------------------------------------------


def test_fraud_patterns_setting_is_a_json_object_of_valid_regexes(monkeypatch):
    monkeypatch.setenv("VOICEGATE_FRAUD_PATTERNS", '{"gift_cards": "gift cards?"}')
    assert env.env_optional_patterns("VOICEGATE_FRAUD_PATTERNS") == {"gift_cards": "gift cards?"}
    for malformed in ('["gift cards"]', '{"broken": "(unclosed"}', "gift cards", '{"empty": ""}'):
        monkeypatch.setenv("VOICEGATE_FRAUD_PATTERNS", malformed)
        with pytest.raises(ImproperlyConfigured, match="VOICEGATE_FRAUD_PATTERNS"):
            env.env_optional_patterns("VOICEGATE_FRAUD_PATTERNS")
