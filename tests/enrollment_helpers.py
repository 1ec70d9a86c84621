"""Shared set-up for enrollment tests: fixture audio and a voice owner ready to enroll."""

from __future__ import annotations

from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile

from governance.models import ApiKey, VoiceProfile
from tests.factories import IdentityVerificationFactory, VoiceProfileFactory, make_key

FIXTURES = Path(__file__).parent / "fixtures"
STATEMENT_OWNER, STATEMENT_ORGANIZATION, STATEMENT_PURPOSE = "John Smith", "Northwind Bank", "podcasts"
STATEMENT_VALID_UNTIL = "2030-12-31T12:00:00Z"
CHALLENGE_PHRASE = "guitar, zebra, coffee, morning, garden, two four one nine"


def audio_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def upload(name: str, field_name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(field_name or Path(name).name, audio_bytes(name), content_type="audio/flac")


def draft_profile(verified_identity: bool = True) -> VoiceProfile:
    profile = VoiceProfileFactory(
        status=VoiceProfile.Status.DRAFT,
        owner__full_name=STATEMENT_OWNER,
        owner__organization__name=STATEMENT_ORGANIZATION,
    )
    if verified_identity:
        IdentityVerificationFactory(owner=profile.owner)
    return profile


def client_for(api, profile: VoiceProfile):  # type: ignore[no-untyped-def]
    """The API client authenticated with an enroll-scoped key of the profile's organization."""
    _, secret = make_key(profile.owner.organization, actions=[ApiKey.Action.ENROLL])
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return api


def post_sample(api, profile: VoiceProfile, name: str, eager_jobs):  # type: ignore[no-untyped-def]
    with eager_jobs(execute=True):
        return api.post(f"/api/v1/owners/{profile.owner.pk}/samples/", {"file": upload(name)}, format="multipart")
