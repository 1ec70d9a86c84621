"""`Authorization: Api-Key <key>` for DRF. Revoked or expired keys still authenticate as themselves,
so the synthesis policy can name the precise refusal; every other endpoint refuses them in permissions."""

from __future__ import annotations

from typing import Any

from rest_framework import authentication, exceptions
from rest_framework.request import Request

from governance import apikeys
from governance.models import ApiKey

KEYWORD = "Api-Key"


class ApiKeyUser:
    """The request.user of a key-authenticated request: authenticated, but no Django user and no staff rights."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None

    def __init__(self, key: ApiKey) -> None:
        self.key = key

    def __str__(self) -> str:
        return f"api-key {self.key.prefix}"

    def has_perm(self, *args: Any, **kwargs: Any) -> bool:
        return False


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        scheme, _, presented = header.partition(" ")
        if scheme != KEYWORD:
            return None
        key = apikeys.authenticate(presented.strip())
        if key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        return ApiKeyUser(key), key

    def authenticate_header(self, request: Request) -> str:
        return KEYWORD
