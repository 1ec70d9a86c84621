"""The compliance officers' admin: scoped to granted organizations, read-only forms, actions through services.

Every page is tried as the owner-officer (granted org A), another officer (granted org B), an outsider
(not staff) and, where it matters, a superuser.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.admin import helpers
from django.contrib.auth.models import Group
from django.contrib.messages import get_messages
from django.db.models import Model
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from governance import abuse, audit, keyring
from governance.models import (
    AbuseFlag,
    ApiKey,
    AuditEvent,
    ConsentArtifact,
    ErasureRequest,
    IdentityVerification,
    Organization,
    VoiceOwner,
    VoiceProfile,
)
from governance.officers import OFFICER_GROUP, ensure_officer_group
from tests.factories import (
    ConsentFactory,
    IdentityVerificationFactory,
    OrganizationFactory,
    UserFactory,
    VoiceOwnerFactory,
    VoiceProfileFactory,
    compliance_officer_for,
    make_key,
    officer_for,
)

pytestmark = pytest.mark.django_db


# ---- people and URLs ----------------------------------------------------------------------------------


@pytest.fixture
def org() -> Organization:
    return OrganizationFactory(name="Acme Voices")


@pytest.fixture
def other_org() -> Organization:
    return OrganizationFactory(name="Globex Audio")


@pytest.fixture
def officer(org: Organization) -> Any:
    return compliance_officer_for(org)


@pytest.fixture
def officer_client(client: Client, officer: Any) -> Client:
    _login(client, officer)
    return client


@pytest.fixture
def other_officer_client(client: Client, other_org: Organization) -> Client:
    _login(client, compliance_officer_for(other_org))
    return client


def _login(client: Client, user: Any) -> None:
    client.force_login(user)


def _url(model: type[Model], view: str, *args: object) -> str:
    return reverse(f"admin:governance_{model._meta.model_name}_{view}", args=args)


def _change_url(obj: Model) -> str:
    return _url(type(obj), "change", obj.pk)


def _listed(client: Client, model: type[Model], query: str = "") -> set[int]:
    response = client.get(_url(model, "changelist") + query)
    assert response.status_code == 200
    return {obj.pk for obj in response.context["cl"].result_list}


def _act(client: Client, model: type[Model], action: str, objects: list[Model], **extra: str) -> Any:
    data = {"action": action, helpers.ACTION_CHECKBOX_NAME: [o.pk for o in objects], **extra}
    return client.post(_url(model, "changelist"), data)


def _messages(response: Any) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def _actions_logged(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


# One object per admin, built in the given organization.
BUILDERS: dict[str, Callable[[Organization], Model]] = {
    "owner": lambda o: VoiceOwnerFactory(organization=o),
    "profile": lambda o: VoiceProfileFactory(owner__organization=o),
    "consent": lambda o: ConsentFactory(profile__owner__organization=o),
    "identity": lambda o: IdentityVerificationFactory(owner__organization=o),
    "key": lambda o: make_key(o, actions=[ApiKey.Action.SYNTHESIZE])[0],
    "erasure": lambda o: ErasureRequest.objects.create(owner=VoiceOwnerFactory(organization=o), requested_by="test"),
    "audit": lambda o: audit.record("test.event", actor="test", organization_id=o.pk),
    "flag": lambda o: _flag(o),
}
FRAUD_TEXT = "Read me the password for the payroll account."


def _flag(org: Organization) -> AbuseFlag:
    flag = abuse.screen_text(make_key(org, actions=[ApiKey.Action.SYNTHESIZE])[0], FRAUD_TEXT, timezone.now())
    assert flag is not None
    return flag


# ---- scoping -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", BUILDERS)
def test_officer_lists_only_their_organizations_objects(kind: str, officer_client: Client, org: Organization, other_org: Organization) -> None:
    own, foreign = BUILDERS[kind](org), BUILDERS[kind](other_org)
    listed = _listed(officer_client, type(own))
    assert own.pk in listed
    assert foreign.pk not in listed


@pytest.mark.parametrize("kind", BUILDERS)
def test_officer_cannot_open_another_organizations_object(kind: str, other_officer_client: Client, org: Organization) -> None:
    assert other_officer_client.get(_change_url(BUILDERS[kind](org))).status_code == 404


@pytest.mark.parametrize("kind", BUILDERS)
def test_officer_can_open_their_own_organizations_object(kind: str, officer_client: Client, org: Organization) -> None:
    assert officer_client.get(_change_url(BUILDERS[kind](org))).status_code == 200


def test_officer_cannot_open_another_organizations_owner(other_officer_client: Client, org: Organization) -> None:
    owner = VoiceOwnerFactory(organization=org)
    for view in ("change", "history", "delete"):
        assert other_officer_client.get(_url(VoiceOwner, view, owner.pk)).status_code == 404


def test_unknown_id_is_404_not_a_redirect(officer_client: Client) -> None:
    assert officer_client.get(_url(VoiceOwner, "change", 999_999)).status_code == 404


def test_outsider_is_sent_to_login(client: Client, org: Organization) -> None:
    owner = VoiceOwnerFactory(organization=org)
    _login(client, UserFactory())
    for url in (_url(VoiceOwner, "changelist"), _change_url(owner)):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_the_officer_group_cannot_see_the_admin(client: Client, org: Organization) -> None:
    _login(client, officer_for(org))  # granted the organization, but no model permissions
    assert client.get(_url(VoiceOwner, "changelist")).status_code == 403


def test_superuser_sees_every_organization(client: Client, org: Organization, other_org: Organization) -> None:
    owners = {VoiceOwnerFactory(organization=org).pk, VoiceOwnerFactory(organization=other_org).pk}
    _login(client, UserFactory(is_staff=True, is_superuser=True))
    assert _listed(client, VoiceOwner) == owners


def test_organization_filter_offers_only_granted_organizations(officer_client: Client, org: Organization, other_org: Organization) -> None:
    VoiceOwnerFactory(organization=org), VoiceOwnerFactory(organization=other_org)
    response = officer_client.get(_url(VoiceOwner, "changelist"))
    assert org.name in response.content.decode()
    assert other_org.name not in response.content.decode()


def test_officer_sees_the_governance_admin(officer_client: Client) -> None:
    content = officer_client.get(reverse("admin:index")).content.decode()
    for label in ("Voice owners", "Consent artifacts", "Identity verifications", "Api keys", "Erasure requests", "Audit events", "Abuse flags"):
        assert label in content


def test_officer_group_is_idempotent_and_grants_no_add_or_delete() -> None:
    first, second = ensure_officer_group(), ensure_officer_group()
    assert first.pk == second.pk and Group.objects.filter(name=OFFICER_GROUP).count() == 1
    codenames = set(second.permissions.values_list("codename", flat=True))
    assert "view_auditevent" in codenames and "change_consentartifact" in codenames
    assert not {c for c in codenames if c.startswith(("add_", "delete_"))}


# ---- actions -----------------------------------------------------------------------------------------


def _pending_verification(org: Organization) -> IdentityVerification:
    return IdentityVerificationFactory(owner__organization=org, status=IdentityVerification.Status.PENDING, decided_at=None)


def test_approving_a_pending_verification_decides_it_and_audits(officer_client: Client, officer: Any, org: Organization) -> None:
    verification = _pending_verification(org)
    _act(officer_client, IdentityVerification, "approve_verifications", [verification])
    verification.refresh_from_db()
    assert (verification.status, verification.decided_by_id, verification.decision_note) == ("approved", officer.pk, "approved in admin")
    [event] = _actions_logged("identity.approved")
    assert event.actor == audit.actor_for_user(officer) and event.organization_id == org.pk


def test_rejecting_a_pending_verification_decides_it_and_audits(officer_client: Client, org: Organization) -> None:
    verification = _pending_verification(org)
    _act(officer_client, IdentityVerification, "reject_verifications", [verification])
    verification.refresh_from_db()
    assert verification.status == IdentityVerification.Status.REJECTED
    assert len(_actions_logged("identity.rejected")) == 1


def test_an_already_decided_verification_is_not_decided_again(officer_client: Client, org: Organization) -> None:
    verification = IdentityVerificationFactory(owner__organization=org, status=IdentityVerification.Status.REJECTED)
    response = _act(officer_client, IdentityVerification, "approve_verifications", [verification])
    verification.refresh_from_db()
    assert verification.status == IdentityVerification.Status.REJECTED
    assert not _actions_logged("identity.approved")
    assert any("already rejected" in m for m in _messages(response))


def test_revoking_consents_revokes_and_audits(officer_client: Client, officer: Any, org: Organization) -> None:
    consent = ConsentFactory(profile__owner__organization=org)
    _act(officer_client, ConsentArtifact, "revoke_consents", [consent])
    consent.refresh_from_db()
    assert consent.revoked_at is not None and consent.revocation_reason == "revoked in admin"
    [event] = _actions_logged("consent.revoked")
    assert event.actor == audit.actor_for_user(officer)


def test_verifying_a_consent_records_the_officer_override_and_audits(officer_client: Client, officer: Any, org: Organization) -> None:
    consent = ConsentFactory(profile__owner__organization=org, verification_status=ConsentArtifact.Verification.UNVERIFIED)
    _act(officer_client, ConsentArtifact, "verify_consents", [consent])
    consent.refresh_from_db()
    assert consent.verification_status == ConsentArtifact.Verification.VERIFIED
    assert consent.verification_results["officer_override"]["actor"] == audit.actor_for_user(officer)
    assert len(_actions_logged("consent.verified")) == 1


def test_verify_skips_revoked_consents(officer_client: Client, org: Organization) -> None:
    consent = ConsentFactory(
        profile__owner__organization=org, verification_status=ConsentArtifact.Verification.UNVERIFIED, revoked_at=timezone.now()
    )
    response = _act(officer_client, ConsentArtifact, "verify_consents", [consent])
    consent.refresh_from_db()
    assert consent.verification_status == ConsentArtifact.Verification.UNVERIFIED
    assert not _actions_logged("consent.verified")
    assert any("1 skipped" in m for m in _messages(response))


def test_revoking_api_keys_revokes_and_audits(officer_client: Client, org: Organization) -> None:
    key, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE])
    _act(officer_client, ApiKey, "revoke_keys", [key])
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert len(_actions_logged("api_key.revoked")) == 1


def test_activating_a_profile_goes_through_the_activation_checks(officer_client: Client, org: Organization) -> None:
    ready = VoiceProfileFactory(owner__organization=org, status=VoiceProfile.Status.PENDING)
    IdentityVerificationFactory(owner=ready.owner), ConsentFactory(profile=ready)
    unverified = VoiceProfileFactory(owner__organization=org, status=VoiceProfile.Status.PENDING)
    response = _act(officer_client, VoiceProfile, "activate_profiles", [ready, unverified])
    ready.refresh_from_db(), unverified.refresh_from_db()
    assert (ready.status, unverified.status) == (VoiceProfile.Status.ACTIVE, VoiceProfile.Status.PENDING)
    assert any("identity is not verified" in m for m in _messages(response))


def test_erasing_an_owner_asks_for_confirmation_first(officer_client: Client, org: Organization) -> None:
    owner = VoiceOwnerFactory(organization=org)
    response = _act(officer_client, VoiceOwner, "erase_owners", [owner], index="0")
    assert response.status_code == 200
    assert "admin/governance/voiceowner/erase_confirmation.html" in [t.name for t in response.templates]
    owner.refresh_from_db()
    assert not owner.is_erased and not ErasureRequest.objects.exists()


def test_erasing_an_owner_shreds_the_key_and_reports_the_certificate(officer_client: Client, org: Organization) -> None:
    owner = VoiceOwnerFactory(organization=org)
    keyring.data_key_for(owner)
    response = _act(officer_client, VoiceOwner, "erase_owners", [owner], confirmed="yes", reason="subject asked")
    owner.refresh_from_db()
    request = ErasureRequest.objects.get(owner=owner)
    assert owner.is_erased and owner.wrapped_data_key is None
    assert (request.status, request.reason) == (ErasureRequest.Status.COMPLETED, "subject asked")
    assert any(request.certificate_sha256 in m for m in _messages(response))
    assert len(_actions_logged("erasure.completed")) == 1


def test_officer_cannot_act_on_another_organizations_objects(other_officer_client: Client, org: Organization) -> None:
    key, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE])
    owner = VoiceOwnerFactory(organization=org)
    _act(other_officer_client, ApiKey, "revoke_keys", [key])
    _act(other_officer_client, VoiceOwner, "erase_owners", [owner], confirmed="yes")
    key.refresh_from_db(), owner.refresh_from_db()
    assert key.revoked_at is None and not owner.is_erased
    assert not _actions_logged("api_key.revoked") and not _actions_logged("erasure.completed")


# ---- the abuse review queue ----------------------------------------------------------------------------


def test_dismissing_a_flag_dismisses_it_and_audits_the_officer(officer_client: Client, officer: Any, org: Organization) -> None:
    flag = _flag(org)
    _act(officer_client, AbuseFlag, "dismiss_flags", [flag])
    flag.refresh_from_db()
    assert (flag.status, flag.reviewed_by) == (AbuseFlag.Status.DISMISSED, audit.actor_for_user(officer))
    [event] = _actions_logged("abuse.flag_dismissed")
    assert event.actor == audit.actor_for_user(officer) and event.organization_id == org.pk


def test_suspending_the_key_of_a_flag_suspends_it_and_upholds_the_flag(officer_client: Client, org: Organization) -> None:
    flag = _flag(org)
    _act(officer_client, AbuseFlag, "suspend_keys", [flag])
    flag.refresh_from_db(), flag.api_key.refresh_from_db()
    assert flag.status == AbuseFlag.Status.UPHELD and flag.api_key.suspended_at is not None
    assert len(_actions_logged("api_key.suspended")) == 1


def test_reinstating_the_key_of_a_flag_lifts_the_suspension_and_dismisses_the_flag(officer_client: Client, org: Organization) -> None:
    flag = _flag(org)
    abuse.suspend_key(flag.api_key, actor=abuse.SYSTEM_ACTOR)
    _act(officer_client, AbuseFlag, "reinstate_keys", [flag])
    flag.refresh_from_db(), flag.api_key.refresh_from_db()
    assert flag.status == AbuseFlag.Status.DISMISSED and flag.api_key.suspended_at is None
    assert len(_actions_logged("api_key.reinstated")) == 1


def test_dismissing_an_already_reviewed_flag_says_so(officer_client: Client, org: Organization) -> None:
    flag = _flag(org)
    abuse.suspend_key(flag.api_key, actor="test", flag=flag)
    response = _act(officer_client, AbuseFlag, "dismiss_flags", [flag])
    flag.refresh_from_db()
    assert flag.status == AbuseFlag.Status.UPHELD
    assert any("already reviewed" in m for m in _messages(response))


def test_officer_cannot_review_another_organizations_flags(other_officer_client: Client, org: Organization) -> None:
    flag = _flag(org)
    for action in ("dismiss_flags", "suspend_keys"):
        _act(other_officer_client, AbuseFlag, action, [flag])
    flag.refresh_from_db(), flag.api_key.refresh_from_db()
    assert flag.status == AbuseFlag.Status.OPEN and flag.api_key.suspended_at is None
    assert not _actions_logged("abuse.flag_dismissed") and not _actions_logged("api_key.suspended")


def test_flag_pages_show_the_text_hash_and_patterns_never_the_text(officer_client: Client, org: Organization) -> None:
    flag = _flag(org)
    for url in (_url(AbuseFlag, "changelist"), _change_url(flag)):
        content = officer_client.get(url).content.decode()
        assert "credentials" in content and "payroll" not in content
    assert flag.text_sha256 in officer_client.get(_change_url(flag)).content.decode()


def test_open_flags_filter_is_the_review_queue(officer_client: Client, org: Organization) -> None:
    reviewed, waiting = _flag(org), _flag(org)
    abuse.dismiss_flag(reviewed, actor="test")
    assert _listed(officer_client, AbuseFlag, "?status__exact=open") == {waiting.pk}


def test_suspending_and_reinstating_api_keys_from_the_key_list(officer_client: Client, org: Organization) -> None:
    key, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE])
    _act(officer_client, ApiKey, "suspend_keys", [key])
    key.refresh_from_db()
    assert key.suspended_at is not None
    assert _listed(officer_client, ApiKey, "?state=suspended") == {key.pk}
    _act(officer_client, ApiKey, "reinstate_keys", [key])
    key.refresh_from_db()
    assert key.suspended_at is None
    assert [e.action for e in AuditEvent.objects.filter(action__in=["api_key.suspended", "api_key.reinstated"])] == [
        "api_key.suspended", "api_key.reinstated"
    ]


# ---- what is never shown, never editable -----------------------------------------------------------


def test_erased_owner_displays_as_erased_owner_id(officer_client: Client, org: Organization) -> None:
    owner = VoiceOwnerFactory(organization=org, full_name="Ada Lovelace")
    owner.erased_at, owner.full_name = timezone.now(), ""
    owner.save()
    content = officer_client.get(_url(VoiceOwner, "changelist")).content.decode()
    assert f"erased owner #{owner.pk}" in content


def test_owner_page_never_shows_the_data_key(officer_client: Client, org: Organization) -> None:
    owner = VoiceOwnerFactory(organization=org)
    keyring.data_key_for(owner)
    owner.refresh_from_db()
    content = officer_client.get(_change_url(owner)).content.decode().lower()
    assert "data key" not in content and "master key" not in content
    assert bytes(owner.wrapped_data_key).hex() not in content


def test_api_key_secret_hash_is_never_shown(officer_client: Client, org: Organization) -> None:
    key, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE])
    for url in (_url(ApiKey, "changelist"), _change_url(key)):
        assert key.secret_hash not in officer_client.get(url).content.decode()


def test_api_keys_cannot_be_added_in_the_admin(officer_client: Client) -> None:
    assert officer_client.get(_url(ApiKey, "add")).status_code == 403


@pytest.mark.parametrize("kind", ["consent", "identity"])
def test_recorded_decisions_cannot_be_edited_in_the_form(kind: str, officer_client: Client, org: Organization) -> None:
    obj = BUILDERS[kind](org)
    page = officer_client.get(_change_url(obj)).content.decode()
    assert 'name="status"' not in page and 'name="verification_status"' not in page
    assert officer_client.post(_change_url(obj), {"status": "rejected", "verification_status": "rejected"}).status_code == 403


# ---- audit log ---------------------------------------------------------------------------------------


def test_audit_log_refuses_add(officer_client: Client) -> None:
    assert officer_client.get(_url(AuditEvent, "add")).status_code == 403


def test_audit_log_refuses_change(officer_client: Client, org: Organization) -> None:
    event = audit.record("test.event", actor="test", organization_id=org.pk)
    assert officer_client.post(_change_url(event), {"action": "forged"}).status_code == 403
    event.refresh_from_db()
    assert event.action == "test.event"


def test_audit_log_refuses_delete_even_for_a_superuser(client: Client, org: Organization) -> None:
    event = audit.record("test.event", actor="test", organization_id=org.pk)
    _login(client, UserFactory(is_staff=True, is_superuser=True))
    assert client.get(_url(AuditEvent, "delete", event.pk)).status_code == 403
    assert client.post(_url(AuditEvent, "delete", event.pk), {"post": "yes"}).status_code == 403
    _act(client, AuditEvent, "delete_selected", [event], post="yes")
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_audit_log_offers_no_actions(officer_client: Client) -> None:
    response = officer_client.get(_url(AuditEvent, "changelist"))
    assert response.context["action_form"] is None


def test_audit_list_shows_sequence_actor_action_and_target(officer_client: Client, org: Organization) -> None:
    consent = ConsentFactory(profile__owner__organization=org)
    audit.record("consent.revoked", actor="user:7:alice", organization_id=org.pk, target=consent)
    content = officer_client.get(_url(AuditEvent, "changelist")).content.decode()
    assert "user:7:alice" in content and "consent.revoked" in content
    assert f"governance.ConsentArtifact #{consent.pk}" in content


def test_system_audit_events_are_for_superusers_only(officer_client: Client) -> None:
    event = audit.record("test.system", actor="system:test")
    assert event.pk not in _listed(officer_client, AuditEvent)


# ---- list filters ------------------------------------------------------------------------------------


def test_consent_expiry_filter_separates_expiring_expired_and_live(officer_client: Client, org: Organization) -> None:
    now = timezone.now()
    soon = ConsentFactory(profile__owner__organization=org, valid_until=now + timedelta(days=3))
    later = ConsentFactory(profile__owner__organization=org, valid_until=now + timedelta(days=60))
    ended = ConsentFactory(profile__owner__organization=org, valid_from=now - timedelta(days=9), valid_until=now - timedelta(days=1))
    assert _listed(officer_client, ConsentArtifact, "?expiry=soon") == {soon.pk}
    assert _listed(officer_client, ConsentArtifact, "?expiry=expired") == {ended.pk}
    assert _listed(officer_client, ConsentArtifact, "?expiry=live") == {soon.pk, later.pk}


def test_consent_revoked_filter(officer_client: Client, org: Organization) -> None:
    live = ConsentFactory(profile__owner__organization=org)
    revoked = ConsentFactory(profile__owner__organization=org, revoked_at=timezone.now())
    assert _listed(officer_client, ConsentArtifact, "?revoked=yes") == {revoked.pk}
    assert _listed(officer_client, ConsentArtifact, "?revoked=no") == {live.pk}


def test_consent_verification_status_filter(officer_client: Client, org: Organization) -> None:
    ConsentFactory(profile__owner__organization=org)
    unverified = ConsentFactory(profile__owner__organization=org, verification_status=ConsentArtifact.Verification.UNVERIFIED)
    assert _listed(officer_client, ConsentArtifact, "?verification_status__exact=unverified") == {unverified.pk}


def test_api_key_state_filter(officer_client: Client, org: Organization) -> None:
    now = timezone.now()
    active, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE])
    expired, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE], expires_at=now - timedelta(hours=1))
    revoked, _ = make_key(org, actions=[ApiKey.Action.SYNTHESIZE])
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=now)
    assert _listed(officer_client, ApiKey, "?state=active") == {active.pk}
    assert _listed(officer_client, ApiKey, "?state=expired") == {expired.pk}
    assert _listed(officer_client, ApiKey, "?state=revoked") == {revoked.pk}


def test_profile_status_filter(officer_client: Client, org: Organization) -> None:
    VoiceProfileFactory(owner__organization=org)
    pending = VoiceProfileFactory(owner__organization=org, status=VoiceProfile.Status.PENDING)
    assert _listed(officer_client, VoiceProfile, "?status__exact=pending") == {pending.pk}


def test_identity_expiry_filter(officer_client: Client, org: Organization) -> None:
    lapsed = IdentityVerificationFactory(owner__organization=org, expires_at=timezone.now() - timedelta(days=1))
    open_ended = IdentityVerificationFactory(owner__organization=org)
    assert _listed(officer_client, IdentityVerification, "?expiry=expired") == {lapsed.pk}
    assert _listed(officer_client, IdentityVerification, "?expiry=live") == {open_ended.pk}
