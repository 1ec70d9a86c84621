"""Factories for governance objects. `authorized_setup()` builds a voice that may be synthesized right now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone
from guardian.shortcuts import assign_perm

from governance import apikeys
from governance.models import (
    ApiKey,
    ConsentArtifact,
    IdentityVerification,
    Organization,
    VoiceOwner,
    VoiceProfile,
)
from governance.officers import ensure_officer_group

PURPOSE = "support-calls"


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class VoiceOwnerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoiceOwner

    organization = factory.SubFactory(OrganizationFactory)
    full_name = factory.Sequence(lambda n: f"Owner {n}")
    email = factory.Sequence(lambda n: f"owner{n}@example.org")


class VoiceProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VoiceProfile

    owner = factory.SubFactory(VoiceOwnerFactory)
    name = factory.Sequence(lambda n: f"Voice {n}")
    status = VoiceProfile.Status.ACTIVE


class IdentityVerificationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IdentityVerification

    owner = factory.SubFactory(VoiceOwnerFactory)
    method = IdentityVerification.Method.DOCUMENT
    status = IdentityVerification.Status.APPROVED
    decided_at = factory.LazyFunction(timezone.now)


class ConsentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentArtifact

    profile = factory.SubFactory(VoiceProfileFactory)
    statement_text = "I consent to a synthetic version of my voice for support calls."
    purposes = factory.LazyFunction(lambda: [PURPOSE])
    valid_from = factory.LazyFunction(lambda: timezone.now() - timedelta(days=1))
    valid_until = factory.LazyFunction(lambda: timezone.now() + timedelta(days=30))
    verification_status = ConsentArtifact.Verification.VERIFIED
    content_sha256 = "0" * 64


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("correct horse battery staple")


def officer_for(*organizations: Organization, **kwargs: object) -> object:
    """A staff user holding the oversee permission on exactly these organizations."""
    user = UserFactory(is_staff=True, **kwargs)
    for organization in organizations:
        assign_perm("governance.oversee_organization", user, organization)
    return user


@dataclass
class Authorized:
    organization: Organization
    owner: VoiceOwner
    profile: VoiceProfile
    consent: ConsentArtifact
    key: ApiKey
    secret: str


def make_key(organization: Organization, *, actions: list[str], profiles: list[VoiceProfile] = (), purposes: list[str] = (PURPOSE,), **kwargs: object) -> tuple[ApiKey, str]:
    return apikeys.create_key(organization, name="test key", actions=actions, profiles=profiles, purposes=purposes, actor="test", **kwargs)


def authorized_setup(**key_kwargs: object) -> Authorized:
    """An active profile with verified owner and covering consent, and a key scoped to it."""
    profile = VoiceProfileFactory()
    owner = profile.owner
    IdentityVerificationFactory(owner=owner)
    consent = ConsentFactory(profile=profile)
    key, secret = make_key(owner.organization, actions=[ApiKey.Action.SYNTHESIZE, ApiKey.Action.ENROLL], profiles=[profile], **key_kwargs)
    return Authorized(owner.organization, owner, profile, consent, key, secret)


def compliance_officer_for(*organizations: Organization, **kwargs: object) -> object:
    """officer_for(), plus the "Compliance officers" group whose model permissions open the admin."""
    user = officer_for(*organizations, **kwargs)
    user.groups.add(ensure_officer_group())
    return user
