"""Invariant 1, as a pure rule: no combination of facts with any failing condition is allowed."""

from dataclasses import fields, replace

from hypothesis import given
from hypothesis import strategies as st

from governance.policy import ConsentState, Reason, SynthesisFacts, evaluate

ALL_GOOD = SynthesisFacts(
    key_present=True,
    key_revoked=False,
    key_expired=False,
    key_suspended=False,
    key_allows_action=True,
    key_allows_profile=True,
    key_allows_purpose=True,
    key_allows_engine=True,
    owner_erased=False,
    profile_active=True,
    identity_verified=True,
    consent=ConsentState.COVERING,
    audio_budget_spent=False,
    rate_limited=False,
)
# For each fact: the value that fails it.
FAILING = {
    "key_present": False,
    "key_revoked": True,
    "key_expired": True,
    "key_suspended": True,
    "key_allows_action": False,
    "key_allows_profile": False,
    "key_allows_purpose": False,
    "key_allows_engine": False,
    "owner_erased": True,
    "profile_active": False,
    "identity_verified": False,
    "audio_budget_spent": True,
    "rate_limited": True,
}

facts_strategy = st.builds(
    SynthesisFacts,
    **{f.name: st.booleans() for f in fields(SynthesisFacts) if f.name != "consent"},
    consent=st.sampled_from(list(ConsentState)),
)


def _fails_somewhere(facts: SynthesisFacts) -> bool:
    return facts.consent is not ConsentState.COVERING or any(getattr(facts, name) == bad for name, bad in FAILING.items())


def test_all_conditions_met_is_allowed():
    assert evaluate(ALL_GOOD).allowed


@given(facts_strategy)
def test_no_combination_with_a_failing_condition_is_allowed(facts):
    assert evaluate(facts).allowed is not _fails_somewhere(facts)


@given(facts_strategy)
def test_a_refusal_always_names_a_reason_that_actually_failed(facts):
    decision = evaluate(facts)
    if not decision.allowed:
        single = {name: replace(ALL_GOOD, **{name: bad}) for name, bad in FAILING.items()}
        failing_reasons = {evaluate(single[name]).reason for name, bad in FAILING.items() if getattr(facts, name) == bad}
        if facts.consent is not ConsentState.COVERING:
            failing_reasons.add(evaluate(replace(ALL_GOOD, consent=facts.consent)).reason)
        assert decision.reason in failing_reasons


def test_each_single_failure_has_its_own_precise_reason():
    reasons = {name: evaluate(replace(ALL_GOOD, **{name: bad})).reason for name, bad in FAILING.items()}
    assert reasons == {
        "key_present": Reason.KEY_MISSING,
        "key_revoked": Reason.KEY_REVOKED,
        "key_expired": Reason.KEY_EXPIRED,
        "key_suspended": Reason.KEY_SUSPENDED,
        "key_allows_action": Reason.KEY_ACTION_NOT_ALLOWED,
        "key_allows_profile": Reason.KEY_PROFILE_NOT_ALLOWED,
        "key_allows_purpose": Reason.KEY_PURPOSE_NOT_ALLOWED,
        "key_allows_engine": Reason.KEY_ENGINE_NOT_ALLOWED,
        "owner_erased": Reason.OWNER_ERASED,
        "profile_active": Reason.PROFILE_NOT_ACTIVE,
        "identity_verified": Reason.IDENTITY_NOT_VERIFIED,
        "audio_budget_spent": Reason.AUDIO_QUOTA_EXCEEDED,
        "rate_limited": Reason.RATE_LIMIT_EXCEEDED,
    }


def test_each_consent_obstacle_has_its_own_reason():
    reasons = {state: evaluate(replace(ALL_GOOD, consent=state)).reason for state in ConsentState}
    assert len(set(reasons.values())) == len(ConsentState)
    assert reasons[ConsentState.EXPIRED] is Reason.CONSENT_EXPIRED
    assert reasons[ConsentState.REVOKED] is Reason.CONSENT_REVOKED


def test_unexpected_fact_values_deny_by_default():
    assert not evaluate(replace(ALL_GOOD, identity_verified=None)).allowed  # type: ignore[arg-type]
    assert not evaluate(replace(ALL_GOOD, consent="covering-ish")).allowed  # type: ignore[arg-type]


def test_a_suspended_key_is_refused_before_its_scopes_are_looked_at():
    # An officer's suspension is the answer a suspended key gets, whatever else is wrong with the request.
    facts = replace(ALL_GOOD, key_suspended=True, key_allows_profile=False, key_allows_engine=False)
    assert evaluate(facts).reason is Reason.KEY_SUSPENDED


def test_limits_are_judged_last_so_a_refusal_for_cause_never_reads_as_try_again_later():
    facts = replace(ALL_GOOD, audio_budget_spent=True, rate_limited=True, consent=ConsentState.REVOKED)
    assert evaluate(facts).reason is Reason.CONSENT_REVOKED
    assert evaluate(replace(ALL_GOOD, audio_budget_spent=True, rate_limited=True)).reason is Reason.AUDIO_QUOTA_EXCEEDED
