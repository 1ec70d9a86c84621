"""Invariant 5: whatever arrives at any endpoint, the answer is a 4xx in the error shape or a success, never a 500."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from governance.models import ApiKey
from tests.factories import authorized_setup, make_key, officer_for

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=15), inner, max_size=4),
    max_leaves=12,
)
FIELDS = ["full_name", "email", "organization", "owner", "profile", "method", "name", "note", "reason", "purposes",
          "actions", "profiles", "valid_from", "valid_until", "statement_text", "expires_at", "rate_limit_per_minute",
          "text", "purpose", "engine", "format"]
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6) | json_values

COLLECTIONS = ["owners", "identity-verifications", "profiles", "consents", "keys", "audit-events", "erasures", "organizations",
               "synthesis-jobs"]
DETAIL_ACTIONS = {
    "owners": ["erase"],
    "identity-verifications": ["approve", "reject"],
    "profiles": ["submit", "activate", "suspend", "retire"],
    "consents": ["revoke", "verify"],
    "keys": ["revoke"],
    "synthesis-jobs": ["audio"],
}


def _paths(ids: dict[str, int]) -> list[str]:
    paths = [f"/api/v1/{c}/" for c in COLLECTIONS]
    for collection, actions in DETAIL_ACTIONS.items():
        for object_id in (ids.get(collection, 1), 0, 10**12, "x", "-1"):
            paths.append(f"/api/v1/{collection}/{object_id}/")
            paths += [f"/api/v1/{collection}/{object_id}/{a}/" for a in actions]
    return paths


@pytest.fixture
def clients():
    a = authorized_setup()
    _, all_scopes = make_key(a.organization, actions=list(ApiKey.Action.values), profiles=[a.profile])
    key_client, officer_client = APIClient(), APIClient()
    key_client.credentials(HTTP_AUTHORIZATION=f"Api-Key {all_scopes}")
    officer_client.force_authenticate(officer_for(a.organization))
    ids = {"owners": a.owner.pk, "profiles": a.profile.pk, "consents": a.consent.pk, "keys": a.key.pk}
    return [key_client, officer_client], _paths(ids)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies, path_index=st.integers(min_value=0), client_index=st.integers(0, 1))
def test_random_bodies_never_cause_a_server_error(clients, body, path_index, client_index):
    client_list, paths = clients
    path = paths[path_index % len(paths)]
    response = client_list[client_index].post(path, body, format="json")
    assert response.status_code < 500, (path, body, response.content)
    if response.status_code >= 400:
        assert "error" in response.json()


@pytest.mark.parametrize("content_type, payload", [
    ("application/json", b"\xff\xfe\x00garbage"),
    ("application/json", b"[" * 5000),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n"),
    ("application/x-www-form-urlencoded", b"full_name=&email=%ZZ&&&=="),
    ("text/plain", b"hello"),
])
def test_malformed_bodies_are_4xx(clients, content_type, payload):
    client_list, _ = clients
    for client in client_list:
        response = client.generic("POST", "/api/v1/owners/", payload, content_type=content_type)
        assert 400 <= response.status_code < 500, (content_type, response.content)
        assert "error" in response.json()


@pytest.mark.parametrize("huge", [2**63, 2**70, -(2**63) - 1])
def test_out_of_range_ids_are_4xx(clients, huge):
    client_list, _ = clients
    for client in client_list:
        for response in (
            client.get(f"/api/v1/owners/{huge}/"),
            client.post("/api/v1/profiles/", {"owner": huge, "name": "x"}, format="json"),
            client.post("/api/v1/keys/", {"organization": huge, "name": "x", "actions": ["detect"], "profiles": [huge]}, format="json"),
        ):
            assert 400 <= response.status_code < 500, response.content
