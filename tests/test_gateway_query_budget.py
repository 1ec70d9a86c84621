"""One synthesis request has a database budget: the statements it runs are counted, and a change that adds
some fails here (the gate's work before the first chunk is part of every request's time to first audio).

Counted: every statement on every connection (the stream closes its record on a thread of its own). BEGIN is
left out of the budget (SQLite sends it as a statement, PostgreSQL does not); savepoints are counted apart and
must not occur: each transaction of the request is one flat transaction. The request measured is a key's
second: its first also creates the key's counter rows.

When the budget was set, a request went from 37 statements in 5 transactions (before the response: 18 + 8
BEGIN or savepoint; after: 6 + 5) to 27 in 3 (18 + 2 BEGIN; 6 + 1 BEGIN)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.db.backends.signals import connection_created

from governance import biometrics
from governance.models import BiometricBlob
from synthesis.models import FittedVoice
from tests.factories import PURPOSE, authorized_setup

# Committed data: the stream runs on a thread of its own, with its own database connection, as under ASGI.
pytestmark = pytest.mark.django_db(transaction=True)
TEXT = "Your appointment with Doctor Patel is confirmed for Tuesday morning. Please arrive ten minutes early."
FRAUD_TEXT = "Please transfer the deposit to the new account we sent you. Thank you."

# Before the response exists: authentication (1), the profile (1), the decision's facts (4), its spend, spike
# check and audit event (6, one transaction), the voice state and its read's audit event (4) and the synthesis
# record (2), in a second transaction. After the last chunk, in a third: the record's close (outcome, audio
# charged, spike check, audit event: 6).
BEFORE_FIRST_CHUNK = 18
WHOLE_REQUEST = 24
_SAVEPOINTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@pytest.fixture
def ready(settings):
    settings.VOICEGATE_ENGINES = ["fast"]
    a = authorized_setup()
    blob = biometrics.store(a.owner, BiometricBlob.Kind.VOICE_STATE, b"")  # the base voice: counting, not likeness
    FittedVoice.objects.create(profile=a.profile, engine="fast", state=blob, samples_used=2)
    return a


@contextmanager
def _statements() -> Iterator[list[str]]:
    """The SQL run meanwhile on this thread's connection and on every connection opened meanwhile."""
    seen: list[str] = []

    def log(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        seen.append(sql)
        return execute(sql, params, many, context)

    def watch(sender, connection, **kwargs):  # type: ignore[no-untyped-def]
        connection.execute_wrappers.append(log)

    connection_created.connect(watch)
    try:
        with connection.execute_wrapper(log):
            yield seen
    finally:
        connection_created.disconnect(watch)


def _counted(statements: list[str]) -> list[str]:
    return [sql for sql in statements if not sql.lstrip().upper().startswith(("BEGIN", *_SAVEPOINTS))]


def _savepoints(statements: list[str]) -> list[str]:
    return [sql for sql in statements if sql.lstrip().upper().startswith(_SAVEPOINTS)]


def _request(api, a, text: str):  # type: ignore[no-untyped-def]
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {a.secret}")
    response = api.post("/api/v1/synthesize", {"profile": a.profile.pk, "text": text, "purpose": PURPOSE, "format": "pcm"}, format="json")
    assert response.status_code == 200, response.content
    return response


def _drain(response) -> bytes:  # type: ignore[no-untyped-def]
    async def collect() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(collect)()


def _measured_request(api, a, text: str) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    """The statements of one request: (until the response exists, while its stream is read to the end)."""
    _drain(_request(api, a, text))  # the key's first request creates its counter rows
    with _statements() as before:
        response = _request(api, a, text)
    with _statements() as after:
        _drain(response)
    return before, after


def test_a_synthesis_request_stays_within_its_query_budget(api, ready):
    before, after = _measured_request(api, ready, TEXT)
    assert len(_counted(before)) <= BEFORE_FIRST_CHUNK, "\n".join(_counted(before))
    assert len(_counted(before + after)) <= WHOLE_REQUEST, "\n".join(_counted(before + after))


def test_a_synthesis_request_uses_no_savepoints(api, ready):
    before, after = _measured_request(api, ready, TEXT)
    assert _savepoints(before + after) == []


def test_a_fraud_pattern_text_already_awaiting_review_costs_one_lookup_more(api, ready):
    before, after = _measured_request(api, ready, FRAUD_TEXT)
    assert len(_counted(before)) <= BEFORE_FIRST_CHUNK + 1, "\n".join(_counted(before))
    assert len(_counted(before + after)) <= WHOLE_REQUEST + 1, "\n".join(_counted(before + after))
