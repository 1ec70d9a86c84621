"""Invariant 3: the audit log is append-only and hash-chained; verify_audit_chain finds any tampering."""

import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from governance import audit
from governance.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def five_events():
    return [audit.record(f"test.event{i}", actor="test", organization_id=1, data={"n": i}) for i in range(1, 6)]


def _sql(statement: str, params: list) -> None:
    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(statement.format(table=table), params)


def _verify() -> str:
    with pytest.raises(CommandError) as failure:
        call_command("verify_audit_chain")
    return str(failure.value)


def test_intact_chain_verifies(five_events, capsys):
    call_command("verify_audit_chain")
    assert "5 rows verified" in capsys.readouterr().out


def test_events_link_to_their_predecessor(five_events):
    assert five_events[0].previous_hash == audit.GENESIS_HASH
    assert all(b.previous_hash == a.row_hash for a, b in zip(five_events, five_events[1:]))


def test_edited_row_is_named(five_events):
    _sql("UPDATE {table} SET data = %s WHERE sequence = 3", [json.dumps({"n": 999})])
    assert "sequence 3" in _verify() and "edited" in _verify()


def test_edited_actor_is_named(five_events):
    _sql("UPDATE {table} SET actor = %s WHERE sequence = 2", ["someone-else"])
    assert "sequence 2" in _verify()


def test_deleted_row_is_named(five_events):
    _sql("DELETE FROM {table} WHERE sequence = 2", [])
    assert "sequence 3" in _verify() and "deleted" in _verify()


def test_deleted_last_row_is_detected(five_events):
    _sql("DELETE FROM {table} WHERE sequence = 5", [])
    assert "sequence 5" in _verify()


def test_reordered_rows_are_named(five_events):
    _sql("UPDATE {table} SET sequence = 1000 WHERE sequence = 2", [])
    _sql("UPDATE {table} SET sequence = 2 WHERE sequence = 4", [])
    _sql("UPDATE {table} SET sequence = 4 WHERE sequence = 1000", [])
    assert "sequence 2" in _verify()


def test_row_rehashed_without_the_audit_key_is_named(five_events):
    event = AuditEvent.objects.get(sequence=4)
    event.data = {"n": 40}
    forged_hash = audit._row_hash(event)
    _sql("UPDATE {table} SET data = %s, row_hash = %s WHERE sequence = 4", [json.dumps({"n": 40}), forged_hash])
    message = _verify()
    assert "sequence 4" in message and "HMAC" in message


def test_audit_rows_refuse_update_and_delete_through_the_orm(five_events):
    event = AuditEvent.objects.get(sequence=1)
    event.action = "changed"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(sequence=1).update(action="changed")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
