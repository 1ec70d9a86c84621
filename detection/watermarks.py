"""Watermark verification with every live key, and provenance lookup of the record the payload names."""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
from django.conf import settings

from synthesis.models import SynthesisRecord
from voicegate import crypto
from voicegate.audio import watermark


def live_keys() -> list[bytes]:
    """The current key first, then retired keys: old clips stay verifiable after rotation."""
    return [settings.VOICEGATE_WATERMARK_KEY, *settings.VOICEGATE_RETIRED_WATERMARK_KEYS]


def verify(samples: np.ndarray, sample_rate: int) -> tuple[dict[str, object], SynthesisRecord | None]:
    """The verdict (JSON-ready) and the synthesis record the mark names, if any key verifies one."""
    strongest: watermark.Detection | None = None
    tag_checks = 0  # over every key tried: each check is a chance for a forged or random tag to pass
    keys = live_keys()
    for key, found in zip(keys, watermark.detect_each(samples, sample_rate, keys)):
        tag_checks += found.candidates_tried
        record = SynthesisRecord.objects.filter(pk=found.payload).first() if found.payload is not None else None
        if record is not None:
            return _verdict(found, crypto.key_id(key), record, tag_checks), record
        if strongest is None or found.presence_z > strongest.presence_z:
            strongest = found
    assert strongest is not None
    return _verdict(strongest, None, None, tag_checks), None


def _verdict(
    found: watermark.Detection, key_id: str | None, record: SynthesisRecord | None, tag_checks: int
) -> dict[str, object]:
    # A payload whose MAC verified but that names no record we issued is not ours: reported as unmarked.
    return {
        "marked": record is not None,
        "record_id": record.pk if record is not None else None,
        "key_id": key_id,
        "confidence_z": round(float(found.presence_z), 2),
        "marked_fraction": round(found.marked_fraction, 3) if record is not None else 0.0,
        "segments": [asdict(s) for s in found.segments] if record is not None else [],
        # 1.0 = as issued; e.g. 1.05 = the clip was slowed to 1/1.05 of its speed (pitch kept) after issue
        "time_scale": round(float(found.scale), 4) if record is not None and found.scale else None,
        # an echo (a delayed copy, e.g. a re-recording or an effect) that was in the clip and removed before decoding
        "echo": asdict(found.echo) if record is not None and found.echo else None,
        "false_positive_bound": tag_checks * 2.0**-watermark.TAG_BITS,
    }


def provenance(record: SynthesisRecord) -> dict[str, object]:
    return {
        "record_id": record.pk,
        "created_at": record.created_at.isoformat(),
        "profile": record.profile_id,
        "purpose": record.purpose,
        "engine": record.engine,
        "key_prefix": record.api_key.prefix if record.api_key_id else None,
        "text_sha256": record.text_sha256,
        "output_sha256": record.output_sha256,
        "outcome": record.outcome,
    }
