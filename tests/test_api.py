"""The governance API: scoped by organization, one error shape, keys shown once, 4xx for bad input."""

from datetime import timedelta

import pytest
from django.utils import timezone

from governance.models import ApiKey, AuditEvent, VoiceOwner, VoiceProfile
from tests.api_helpers import as_key as _as_key, error_of as _error
from tests.factories import (
    IdentityVerificationFactory,
    OrganizationFactory,
    VoiceOwnerFactory,
    VoiceProfileFactory,
    authorized_setup,
    make_key,
    officer_for,
)

pytestmark = pytest.mark.django_db




def test_unauthenticated_request_gets_401_in_the_error_shape(api):
    _error(api.get("/api/v1/owners/"), 401, "not_authenticated")


def test_unknown_key_is_401(api):
    _error(_as_key(api, "vg_deadbeef_not-a-real-secret").get("/api/v1/owners/"), 401, "authentication_failed")


def test_revoked_key_is_401_on_management_endpoints(api):
    a = authorized_setup()
    ApiKey.objects.filter(pk=a.key.pk).update(revoked_at=timezone.now())
    assert "revoked" in _error(_as_key(api, a.secret).get("/api/v1/owners/"), 401)["message"]


def test_key_lists_only_its_own_organizations_owners(api):
    a, b = authorized_setup(), authorized_setup()
    ids = [o["id"] for o in _as_key(api, a.secret).get("/api/v1/owners/").json()["results"]]
    assert ids == [a.owner.pk] and b.owner.pk not in ids


def test_another_organizations_owner_is_404_not_403(api):
    a, b = authorized_setup(), authorized_setup()
    _error(_as_key(api, a.secret).get(f"/api/v1/owners/{b.owner.pk}/"), 404, "not_found")


def test_unknown_id_and_malformed_id_are_404(api):
    a = authorized_setup()
    _error(_as_key(api, a.secret).get("/api/v1/owners/999999/"), 404)
    _error(api.get("/api/v1/owners/not-a-number/"), 404)


def test_key_without_enroll_scope_cannot_register_owners(api):
    org = OrganizationFactory()
    _, secret = make_key(org, actions=["detect"])
    _error(_as_key(api, secret).post("/api/v1/owners/", {"full_name": "X"}, format="json"), 403, "permission_denied")


def test_key_registers_an_owner_in_its_organization_and_it_is_audited(api):
    a = authorized_setup()
    response = _as_key(api, a.secret).post("/api/v1/owners/", {"full_name": "Ada Lovelace", "email": "ada@example.org"}, format="json")
    assert response.status_code == 201, response.content
    owner = VoiceOwner.objects.get(pk=response.json()["id"])
    assert owner.organization == a.organization
    assert AuditEvent.objects.filter(action="owner.registered", target_id=str(owner.pk)).exists()


def test_key_cannot_register_an_owner_in_another_organization(api):
    a, b = authorized_setup(), authorized_setup()
    response = _as_key(api, a.secret).post(
        "/api/v1/owners/", {"full_name": "X", "organization": b.organization.pk}, format="json"
    )
    assert "organization" in _error(response, 400, "invalid")["details"]


@pytest.mark.parametrize(
    "body, field",
    [({}, "full_name"), ({"full_name": "x" * 500}, "full_name"), ({"full_name": "A", "email": "not-an-email"}, "email")],
)
def test_invalid_owner_fields_are_400_naming_the_field(api, body, field):
    a = authorized_setup()
    assert field in _error(_as_key(api, a.secret).post("/api/v1/owners/", body, format="json"), 400, "invalid")["details"]


def test_malformed_json_is_400(api):
    a = authorized_setup()
    response = _as_key(api, a.secret).post("/api/v1/owners/", "{not json", content_type="application/json")
    _error(response, 400, "parse_error")


def test_oversize_body_is_413(api, settings):
    a = authorized_setup()
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 2048
    response = _as_key(api, a.secret).post("/api/v1/owners/", {"full_name": "x" * 5000}, format="json")
    _error(response, 413, "payload_too_large")


def test_consent_window_must_be_ordered(api):
    a = authorized_setup()
    now = timezone.now()
    body = {"profile": a.profile.pk, "statement_text": "I consent.", "purposes": ["support-calls"],
            "valid_from": now.isoformat(), "valid_until": (now - timedelta(days=1)).isoformat()}
    assert "valid_until" in _error(_as_key(api, a.secret).post("/api/v1/consents/", body, format="json"), 400)["details"]


def test_consent_for_another_organizations_profile_is_refused(api):
    a, b = authorized_setup(), authorized_setup()
    now = timezone.now()
    body = {"profile": b.profile.pk, "statement_text": "I consent.", "purposes": ["support-calls"],
            "valid_from": now.isoformat(), "valid_until": (now + timedelta(days=1)).isoformat()}
    assert "profile" in _error(_as_key(api, a.secret).post("/api/v1/consents/", body, format="json"), 400)["details"]


def test_invalid_lifecycle_transition_is_409(api):
    a = authorized_setup()
    officer = officer_for(a.organization)
    api.force_authenticate(officer)
    response = api.post(f"/api/v1/profiles/{a.profile.pk}/submit/")
    _error(response, 409, "invalid_transition")


def test_officer_activates_profile_only_when_identity_and_consent_are_verified(api):
    profile = VoiceProfileFactory(status=VoiceProfile.Status.PENDING)
    api.force_authenticate(officer_for(profile.owner.organization))
    blocked = _error(api.post(f"/api/v1/profiles/{profile.pk}/activate/"), 409, "invalid_transition")
    assert "identity" in blocked["message"] and "consent" in blocked["message"]


def test_key_cannot_approve_identity_verifications(api):
    a = authorized_setup()
    pending = IdentityVerificationFactory(owner=a.owner, status="pending")
    _error(_as_key(api, a.secret).post(f"/api/v1/identity-verifications/{pending.pk}/approve/", {"note": "ok"}, format="json"), 403)


def test_officer_approves_identity_verification_of_their_organization(api):
    owner = VoiceOwnerFactory()
    pending = IdentityVerificationFactory(owner=owner, status="pending")
    api.force_authenticate(officer_for(owner.organization))
    response = api.post(f"/api/v1/identity-verifications/{pending.pk}/approve/", {"note": "passport seen"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "approved"


def test_officer_of_another_organization_gets_404(api):
    owner = VoiceOwnerFactory()
    pending = IdentityVerificationFactory(owner=owner, status="pending")
    api.force_authenticate(officer_for(OrganizationFactory()))
    _error(api.post(f"/api/v1/identity-verifications/{pending.pk}/approve/", {"note": "x"}, format="json"), 404)


def test_api_key_secret_is_shown_once_and_stored_only_as_hash(api):
    org = OrganizationFactory()
    api.force_authenticate(officer_for(org))
    response = api.post("/api/v1/keys/", {"organization": org.pk, "name": "ivr", "actions": ["detect"]}, format="json")
    assert response.status_code == 201, response.content
    secret = response.json()["key"]
    key = ApiKey.objects.get(pk=response.json()["id"])
    assert secret.startswith(key.prefix + "_") and secret not in key.secret_hash
    listed = api.get(f"/api/v1/keys/{key.pk}/").json()
    assert "key" not in listed and secret not in str(listed)


def test_a_key_cannot_mint_keys(api):
    a = authorized_setup()
    response = _as_key(api, a.secret).post("/api/v1/keys/", {"organization": a.organization.pk, "name": "x", "actions": ["synthesize"]}, format="json")
    _error(response, 403)


def test_key_with_unknown_action_is_400(api):
    org = OrganizationFactory()
    api.force_authenticate(officer_for(org))
    response = api.post("/api/v1/keys/", {"organization": org.pk, "name": "x", "actions": ["fly"]}, format="json")
    assert "actions" in _error(response, 400)["details"]


def test_erase_endpoint_returns_certificate(api):
    a = authorized_setup()
    response = _as_key(api, a.secret).post(f"/api/v1/owners/{a.owner.pk}/erase/", {"reason": "owner request"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["certificate"]["data_key_destroyed"] is True


def test_audit_events_need_the_read_audit_scope_and_are_scoped(api):
    a, _other_organization = authorized_setup(), authorized_setup()  # its events must not show
    _error(_as_key(api, a.secret).get("/api/v1/audit-events/"), 403)
    _, reader = make_key(a.organization, actions=["read-audit"])
    events = _as_key(api, reader).get("/api/v1/audit-events/").json()["results"]
    assert events and {e["organization_id"] for e in events} == {a.organization.pk}


def test_openapi_schema_and_docs_are_served(client):
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.get("/api/v1/docs/").status_code == 200


def test_unknown_api_path_is_404_in_the_error_shape(client):
    _error(client.get("/api/v1/no-such-thing/"), 404, "not_found")
