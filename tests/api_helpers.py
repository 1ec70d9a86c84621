"""Small helpers shared by API tests: authenticate as a key, and assert the one error shape."""

from __future__ import annotations

from typing import Any


def as_key(api: Any, secret: str) -> Any:
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    return api


def error_of(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    """The response's error body, after checking its status and the {"error": {"code", "message"}} shape."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    if code:
        assert body["error"]["code"] == code
    return body["error"]
