"""Request text, validated against settings: a TextRejected becomes a 400 naming its reason."""

from __future__ import annotations

from django.conf import settings

from synthesis import text
from synthesis.errors import TextNotSpeakable


def checked(raw: str, max_chars: int | None = None) -> str:
    """``raw`` validated against ``max_chars`` (default: the request limit, VOICEGATE_MAX_TEXT_CHARS)."""
    try:
        return text.validate_text(raw, max_chars or settings.VOICEGATE_MAX_TEXT_CHARS)
    except text.TextRejected as rejected:
        error = TextNotSpeakable(rejected.message)
        error.details = {"reason": rejected.reason_code}
        raise error from None
