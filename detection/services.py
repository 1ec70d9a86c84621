"""Checking a submitted clip: decode safely, verify the watermark, record the check with the file's hash."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from django.db import transaction

from detection import classifier, voice_match, watermarks
from detection.verdict import combine
from detection.models import Detection
from governance import audit, voice_checks
from voicegate.audio.decode import DecodedAudio


def synthetic_score(audio: DecodedAudio) -> dict[str, object]:
    """The synthetic-speech classifier's calibrated probability and band (detection/classifier.py)."""
    return {**asdict(classifier.score(audio.samples)), "model": classifier.MODEL_VERSION}


def check_clip(data: bytes, filename: str | None, *, actor: str, organization_ids: frozenset[int]) -> dict[str, object]:
    """The verdict for the caller. Provenance details only when the caller's organization made the clip."""
    file_sha256 = hashlib.sha256(data).hexdigest()
    audio = voice_checks.decode(data, filename)
    mark, record = watermarks.verify(audio.samples, audio.sample_rate)
    voices = voice_match.closest_voices(voice_checks.embed(audio), organization_ids, actor=actor)
    classifier = synthetic_score(audio)
    verdict = combine(mark, classifier, voices)
    owned = record is not None and record.organization_id in organization_ids
    organization_id = record.organization_id if owned else (min(organization_ids) if len(organization_ids) == 1 else None)
    with transaction.atomic():
        detection = Detection.objects.create(
            organization_id=organization_id, submitted_by=actor, file_sha256=file_sha256, file_bytes=len(data),
            duration_s=round(audio.duration_s, 3), watermark=mark, synthesis_record=record,
            classifier=classifier, voice_matches=voices, verdict=verdict.label, reasons=list(verdict.reasons),
        )
        audit.record(
            "detection.checked", actor=actor, organization_id=organization_id, target=detection,
            data={"file_sha256": file_sha256, "verdict": verdict.label, "record_id": mark["record_id"]},
        )
    return {
        "detection": detection.pk,
        "file_sha256": file_sha256,
        "duration_s": detection.duration_s,
        "verdict": verdict.label,
        "reasons": list(verdict.reasons),
        "watermark": mark,
        "classifier": classifier,
        "voice_matches": voices,
        "provenance": watermarks.provenance(record) if owned and record is not None else None,
    }
