import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from governance import apikeys
from governance.models import AuditEvent
from tests.factories import OrganizationFactory, VoiceProfileFactory

pytestmark = pytest.mark.django_db


def test_createapikey_prints_the_secret_once_and_scopes_the_key():
    profile = VoiceProfileFactory()
    out = io.StringIO()
    call_command(
        "createapikey", "--organization", profile.owner.organization.slug, "--name", "ivr",
        "--actions", "synthesize,detect", "--purposes", "support-calls", "--profiles", str(profile.pk),
        "--expires-in-days", "30", stdout=out,
    )
    secret = out.getvalue().strip().splitlines()[-1]
    key = apikeys.authenticate(secret)
    assert key is not None and key.actions == ["detect", "synthesize"] and list(key.profiles.all()) == [profile]
    assert key.expires_at is not None
    assert AuditEvent.objects.filter(action="api_key.created", target_id=str(key.pk)).exists()


@pytest.mark.parametrize("args, message", [
    (["--organization", "nope", "--name", "x", "--actions", "detect"], "no organization"),
    (["--name", "x", "--actions", "fly"], "unknown actions"),
    (["--name", "x", "--actions", "detect", "--profiles", "999999"], "not found"),
    (["--name", "x", "--actions", "detect", "--profiles", "abc"], "numeric"),
    (["--name", "x", "--actions", "detect", "--expires-in-days", "0"], "positive"),
])
def test_createapikey_refuses_bad_arguments_with_a_message(args, message):
    org = OrganizationFactory(slug="acme")
    if "--organization" not in args:
        args = ["--organization", org.slug, *args]
    with pytest.raises(CommandError, match=message):
        call_command("createapikey", *args)


def test_createapikey_refuses_a_profile_of_another_organization():
    OrganizationFactory(slug="acme")
    foreign = VoiceProfileFactory()
    with pytest.raises(CommandError, match="not found in acme"):
        call_command("createapikey", "--organization", "acme", "--name", "x", "--actions", "synthesize", "--profiles", str(foreign.pk))


def test_unknown_api_key_does_not_authenticate():
    assert apikeys.authenticate("vg_00000000_nothing") is None
    assert apikeys.authenticate("garbage") is None


def test_first_officer_is_created_once_from_the_environment(monkeypatch):
    monkeypatch.setenv("VOICEGATE_ADMIN_USERNAME", "chief")
    monkeypatch.setenv("VOICEGATE_ADMIN_PASSWORD", "a long enough password")
    call_command("ensure_first_officer", stdout=io.StringIO())
    out = io.StringIO()
    call_command("ensure_first_officer", stdout=out)
    users = get_user_model().objects.filter(is_superuser=True)
    assert [u.username for u in users] == ["chief"] and users[0].check_password("a long enough password")
    assert "exists" in out.getvalue()


def test_first_officer_password_is_generated_and_printed_when_not_given(monkeypatch):
    monkeypatch.delenv("VOICEGATE_ADMIN_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("ensure_first_officer", stdout=out)
    password = out.getvalue().split("Password:")[1].strip()
    assert len(password) >= 20 and get_user_model().objects.get(is_superuser=True).check_password(password)
