"""A key may be limited to some engines: a request for another engine, named or the deployment's default, is
refused by the gate (403 key_engine_not_allowed). Keys are minted with the option by every route that mints."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from governance import apikeys
from governance.models import ApiKey, AuditEvent
from governance.policy import Reason, decide_synthesis
from tests.api_helpers import as_key, error_of
from tests.factories import PURPOSE, OrganizationFactory, authorized_setup, officer_for

pytestmark = pytest.mark.django_db
TEXT = "Your appointment is confirmed for Tuesday."


def test_key_limited_to_other_engines_is_refused_for_the_engine_it_names():
    a = authorized_setup(allowed_engines=["quality"])
    assert decide_synthesis(a.key, a.profile, PURPOSE, TEXT, "fast").reason is Reason.KEY_ENGINE_NOT_ALLOWED
    assert decide_synthesis(a.key, a.profile, PURPOSE, TEXT, "quality").allowed


def test_the_default_engine_is_checked_against_the_key_too(settings):
    settings.VOICEGATE_DEFAULT_ENGINE = "fast"
    a = authorized_setup(allowed_engines=["quality"])
    assert decide_synthesis(a.key, a.profile, PURPOSE, TEXT).reason is Reason.KEY_ENGINE_NOT_ALLOWED


def test_a_key_without_an_engine_list_may_use_every_engine():
    a = authorized_setup()
    assert all(decide_synthesis(a.key, a.profile, PURPOSE, TEXT, engine).allowed for engine in ("fast", "quality"))


def test_the_decision_audit_names_the_engine():
    a = authorized_setup(allowed_engines=["quality"])
    decide_synthesis(a.key, a.profile, PURPOSE, TEXT, "fast")
    event = AuditEvent.objects.get(action="synthesis.decision")
    assert (event.data["engine"], event.data["reason"]) == ("fast", "key_engine_not_allowed")


def test_api_request_for_an_engine_the_key_does_not_allow_is_403_with_the_reason(api, settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup(allowed_engines=["quality"])
    body = {"profile": a.profile.pk, "text": TEXT, "purpose": PURPOSE}
    error_of(as_key(api, a.secret).post("/api/v1/synthesize", body, format="json"), 403, "key_engine_not_allowed")
    error_of(api.post("/api/v1/synthesize", {**body, "engine": "fast"}, format="json"), 403, "key_engine_not_allowed")


def test_a_malformed_engine_name_is_refused_when_minting():
    with pytest.raises(ValueError, match="malformed engine names"):
        apikeys.create_key(OrganizationFactory(), name="x", actions=["synthesize"], allowed_engines=["Fast Engine!"], actor="test")


# ---- the routes that mint keys -----------------------------------------------------------------------------


def test_createapikey_takes_engines_and_a_daily_audio_budget():
    org = OrganizationFactory(slug="acme")
    out = io.StringIO()
    call_command(
        "createapikey", "--organization", org.slug, "--name", "ivr", "--actions", "synthesize",
        "--engines", "quality,fast", "--audio-seconds-per-day", "1800", stdout=out,
    )
    key = apikeys.authenticate(out.getvalue().strip().splitlines()[-1])
    assert key is not None and (key.allowed_engines, key.audio_seconds_per_day) == (["fast", "quality"], 1800)


def test_createapikey_leaves_the_limits_to_the_settings_when_not_given():
    org = OrganizationFactory(slug="acme")
    out = io.StringIO()
    call_command("createapikey", "--organization", org.slug, "--name", "ivr", "--actions", "synthesize", stdout=out)
    key = ApiKey.objects.get()
    assert (key.allowed_engines, key.audio_seconds_per_day) == ([], None)


@pytest.mark.parametrize("option", ["--audio-seconds-per-day", "--rate-limit-per-minute"])
def test_createapikey_refuses_a_limit_that_is_not_positive(option):
    org = OrganizationFactory(slug="acme")
    with pytest.raises(CommandError, match="must be positive"):
        call_command("createapikey", "--organization", org.slug, "--name", "x", "--actions", "synthesize", option, "0")


def test_officer_mints_a_key_with_engines_and_audio_budget_through_the_api(api):
    org = OrganizationFactory()
    api.force_authenticate(officer_for(org))
    body = {"organization": org.pk, "name": "ivr", "actions": ["synthesize"], "allowed_engines": ["fast"], "audio_seconds_per_day": 600}
    response = api.post("/api/v1/keys/", body, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["allowed_engines"], response.json()["audio_seconds_per_day"]) == (["fast"], 600)
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert (key.allowed_engines, key.audio_seconds_per_day) == (["fast"], 600)


def test_api_refuses_a_malformed_engine_name_with_400(api):
    org = OrganizationFactory()
    api.force_authenticate(officer_for(org))
    body = {"organization": org.pk, "name": "ivr", "actions": ["synthesize"], "allowed_engines": ["no such\nengine"]}
    assert "allowed_engines" in error_of(api.post("/api/v1/keys/", body, format="json"), 400)["details"]


@pytest.mark.parametrize("field, value", [
    ("allowed_engines", "fast"),
    ("allowed_engines", {"fast": True}),
    ("allowed_engines", ["fast"] * 21),
    ("allowed_engines", ["x" * 33]),
    ("audio_seconds_per_day", 0),
    ("audio_seconds_per_day", "lots"),
    ("audio_seconds_per_day", 10**12),
])
def test_api_refuses_malformed_key_limits_with_400(api, field, value):
    org = OrganizationFactory()
    api.force_authenticate(officer_for(org))
    body = {"organization": org.pk, "name": "ivr", "actions": ["synthesize"], field: value}
    assert field in error_of(api.post("/api/v1/keys/", body, format="json"), 400)["details"]
    assert not ApiKey.objects.exists()
