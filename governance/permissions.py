"""Who may do what, in which organizations: API keys by their scopes, officers by django-guardian grants.

Views filter querysets by `Principal.organization_ids`, so other tenants' objects are simply not
found (404), never "forbidden" (which would confirm they exist).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user
from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from governance import audit
from governance.models import ApiKey, Organization

OVERSEE = "governance.oversee_organization"


@dataclass(frozen=True)
class Principal:
    actor: str
    organization_ids: frozenset[int]
    actions: frozenset[str]
    key: ApiKey | None = None
    officer: AbstractBaseUser | None = None

    @property
    def is_officer(self) -> bool:
        return self.officer is not None


def officer_organization_ids(user: AbstractBaseUser) -> frozenset[int]:
    if user.is_superuser:
        return frozenset(Organization.objects.values_list("pk", flat=True))
    granted = get_objects_for_user(user, OVERSEE, klass=Organization, accept_global_perms=False)
    return frozenset(granted.values_list("pk", flat=True))


def principal_for(request: Request) -> Principal:
    key = request.auth if isinstance(request.auth, ApiKey) else None
    if key is not None:
        return Principal(audit.actor_for_key(key), frozenset({key.organization_id}), frozenset(key.actions), key=key)
    user = request.user
    # Officers act in the admin's name: every action but synthesis, in their granted organizations.
    officer_actions = frozenset(ApiKey.Action.values) - {ApiKey.Action.SYNTHESIZE}
    return Principal(audit.actor_for_user(user), officer_organization_ids(user), officer_actions, officer=user)


class RequiresAction(permissions.BasePermission):
    """Grants the view's `required_action`; actions named in the view's `officer_actions` need an officer."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not (request.user and request.user.is_authenticated):
            raise exceptions.NotAuthenticated()
        principal = principal_for(request)
        officer_actions = getattr(view, "officer_actions", frozenset())
        if ("*" in officer_actions or getattr(view, "action", None) in officer_actions) and not principal.is_officer:
            raise exceptions.PermissionDenied("Only a compliance officer may do this.")
        if principal.key is not None:
            _check_key_usable(principal.key)
        action = getattr(view, "required_action", None)
        if action is not None and action not in principal.actions:
            raise exceptions.PermissionDenied(f"This credential lacks the '{action}' scope.")
        request.principal = principal
        return True


def _check_key_usable(key: ApiKey) -> None:
    if key.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This API key was revoked.")
    if key.suspended_at is not None:
        raise exceptions.AuthenticationFailed("This API key is suspended pending a compliance review.")
    if not key.is_usable_at(timezone.now()):
        raise exceptions.AuthenticationFailed("This API key has expired.")
