"""The append-only, hash-chained audit log.

Each row's hash covers its content and the previous row's hash; an HMAC under VOICEGATE_AUDIT_KEY
covers the hash, so rows cannot be forged without the key. Appends lock the chain head, so
concurrent writers cannot fork the chain. Audit data never holds biometric data or free text that
could (text is recorded by hash).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone
from typing import Any, Iterator

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from governance.models import AuditChainHead, AuditEvent
from voicegate import crypto

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    rows_checked: int
    first_bad_sequence: int | None = None
    problem: str = ""


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def record(
    action: str,
    *,
    actor: str,
    organization_id: int | None = None,
    target: models.Model | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. Call inside the transaction of the change it records."""
    # No savepoint of its own (two statements less per event): an append that fails must undo the change it
    # records anyway, never be skipped past. Called outside a transaction, it still runs in one.
    with transaction.atomic(savepoint=False):
        head = _locked_head()
        event = AuditEvent(
            sequence=head.last_sequence + 1,
            created_at=timezone.now(),
            actor=actor,
            action=action,
            organization_id=organization_id,
            target_type=target._meta.label if target is not None else "",
            target_id=str(target.pk) if target is not None else "",
            data=json.loads(json.dumps(data or {}, default=str)),
            previous_hash=head.last_hash,
        )
        event.row_hash = _row_hash(event)
        event.row_hmac = crypto.hmac_sha256(settings.VOICEGATE_AUDIT_KEY, event.row_hash.encode())
        event.save()
        head.last_sequence, head.last_hash = event.sequence, event.row_hash
        head.save(update_fields=["last_sequence", "last_hash"])
        return event


def text_digest(text: str) -> str:
    """Free text (notes, reasons) enters the log only as a hash: the log outlives erasure, the text may not."""
    return sha256_hex(text)


def actor_for_user(user: Any) -> str:
    return f"user:{user.pk}:{user.get_username()}" if user is not None and user.is_authenticated else "anonymous"


def _locked_head() -> AuditChainHead:
    head = AuditChainHead.objects.select_for_update().filter(pk=1).first()
    if head is not None:
        return head
    # Only before the first event ever (or after a test flush): two first writers race, one retries.
    try:
        with transaction.atomic():
            AuditChainHead.objects.create(pk=1, last_sequence=0, last_hash=GENESIS_HASH)
    except IntegrityError:
        pass
    return AuditChainHead.objects.select_for_update().get(pk=1)


def actor_for_key(key: Any) -> str:
    return f"api-key:{key.prefix}"


def verify_chain() -> ChainVerification:
    """Walk the whole chain; report the first row whose sequence, link, hash or HMAC is wrong."""
    expected_previous, expected_sequence, checked = GENESIS_HASH, 1, 0
    for event in _events_in_order():
        problem = _row_problem(event, expected_sequence, expected_previous)
        if problem:
            return ChainVerification(False, checked, event.sequence, problem)
        expected_previous, expected_sequence, checked = event.row_hash, event.sequence + 1, checked + 1
    head = AuditChainHead.objects.filter(pk=1).first() or AuditChainHead(last_sequence=0, last_hash=GENESIS_HASH)
    if head.last_sequence != expected_sequence - 1 or head.last_hash != expected_previous:
        return ChainVerification(False, checked, expected_sequence, "rows after this one were deleted (chain head disagrees)")
    return ChainVerification(True, checked)


def _events_in_order() -> Iterator[AuditEvent]:
    return AuditEvent.objects.order_by("sequence", "pk").iterator(chunk_size=2000)


def _row_problem(event: AuditEvent, expected_sequence: int, expected_previous: str) -> str:
    if event.sequence != expected_sequence:
        return f"expected sequence {expected_sequence}, found {event.sequence}: a row was deleted or reordered"
    if event.previous_hash != expected_previous:
        return "previous-hash link does not match the row before it: rows were reordered or replaced"
    if event.row_hash != _row_hash(event):
        return "row content does not match its hash: the row was edited"
    expected_hmac = crypto.hmac_sha256(settings.VOICEGATE_AUDIT_KEY, event.row_hash.encode())
    if not crypto.constant_time_equal(event.row_hmac, expected_hmac):
        return "HMAC does not match: the row was forged without the audit key"
    return ""


def _row_hash(event: AuditEvent) -> str:
    content = {
        "sequence": event.sequence,
        "created_at": _utc_iso(event.created_at),
        "actor": event.actor,
        "action": event.action,
        "organization_id": event.organization_id,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "data": event.data,
        "previous_hash": event.previous_hash,
    }
    return sha256_hex(json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True))


def _utc_iso(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
