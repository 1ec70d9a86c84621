"""The gated synthesis path. Every route that produces audio (API, CLI) calls start(), and the only way
samples leave an engine is through _marked_pcm(), which watermarks them with the record's id.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from governance import abuse, audit, biometrics, keyring, policy, ratelimit
from governance.models import ApiKey, VoiceProfile
from synthesis import registry, text_input
from synthesis.errors import SynthesisRefused, VoiceNotReady
from synthesis.models import FittedVoice, SynthesisRecord
from voicegate import crypto
from voicegate.audio import watermark

logger = logging.getLogger(__name__)


@dataclass
class SynthesisStream:
    """An authorized, recorded synthesis: iterate `pcm16` for little-endian 16-bit mono at `sample_rate`."""

    record: SynthesisRecord
    sample_rate: int
    pcm16: Iterator[bytes]


def start(key: ApiKey | None, profile: VoiceProfile, text: str, purpose: str, engine_name: str | None = None) -> SynthesisStream:
    """Validate, decide, record; return the stream. Raises before any audio exists when anything is wrong."""
    text = text_input.checked(text)
    engine = registry.get(engine_name or settings.VOICEGATE_DEFAULT_ENGINE)
    decision = policy.decide_synthesis(key, profile, purpose, text, engine.name)
    if not decision.allowed:
        raise SynthesisRefused(decision)
    with transaction.atomic():  # one commit: the biometric read's audit event and the record it served
        voice_state = _voice_state(profile, engine.name, key)
        record = _open_record(key, profile, purpose, engine.name, text)
    chunks = engine.stream(text, voice_state)  # engines normalize text for speech themselves
    marked = _begun(_marked_pcm(record, chunks, engine.sample_rate))
    return SynthesisStream(record, engine.sample_rate, _recorded(record, marked, engine.sample_rate, time.perf_counter()))


def _voice_state(profile: VoiceProfile, engine_name: str, key: ApiKey | None) -> bytes:
    fitted = FittedVoice.objects.filter(profile=profile, engine=engine_name, state__isnull=False).select_related("state__owner").first()
    if fitted is None:
        raise VoiceNotReady(f"profile {profile.pk} has no voice fitted for the {engine_name!r} engine yet")
    actor = audit.actor_for_key(key) if key is not None else "system"
    return biometrics.read(fitted.state, actor=actor, purpose="synthesis")


def _open_record(key: ApiKey | None, profile: VoiceProfile, purpose: str, engine_name: str, text: str) -> SynthesisRecord:
    """Called inside the caller's transaction: the record and its encrypted text land together or not at all."""
    record = SynthesisRecord.objects.create(
        organization_id=profile.owner.organization_id, api_key=key, profile=profile, purpose=purpose,
        engine=engine_name, text_sha256=audit.sha256_hex(text),
        watermark_key_id=crypto.key_id(settings.VOICEGATE_WATERMARK_KEY),
    )
    record.text_ciphertext = crypto.encrypt(keyring.data_key_for(profile.owner), text.encode(), _text_context(record))
    record.save(update_fields=["text_ciphertext"])
    if record.pk >= 2**32:
        raise OverflowError("synthesis record ids have outgrown the 32-bit watermark payload")
    return record


def _text_context(record: SynthesisRecord) -> bytes:
    return f"synthesis-text:{record.pk}".encode()


def _marked_pcm(
    record: SynthesisRecord, chunks: Iterator[np.ndarray], sample_rate: int
) -> Generator[bytes, None, None]:
    """Watermark each chunk as it is produced; 16-bit PCM out. Touches no database (see _begun)."""
    embedder = watermark.StreamingEmbedder(sample_rate, record.pk, settings.VOICEGATE_WATERMARK_KEY)
    for chunk in _marked(embedder, chunks):
        if chunk.size:
            yield _to_pcm16(chunk)


def _marked(embedder: watermark.StreamingEmbedder, chunks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    for chunk in chunks:
        yield embedder.process(np.asarray(chunk, dtype=np.float32))
    yield embedder.flush()


def _to_pcm16(chunk: np.ndarray) -> bytes:
    return (np.clip(chunk, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


# The first marked chunk is begun as soon as the request is decided, audited and recorded, on a thread of this
# pool: the engine works while the request gets ready for audio (back through the view and the middleware, the
# headers sent, the stream's own thread started). Only the engine and the watermark run there, no database work,
# so a stream that is never read leaves nothing behind but its open record, as before. A thread is held only for
# a first chunk; threads start as needed.
_FIRST_CHUNKS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="synthesis-first-chunk")


def _begun(pcm: Generator[bytes, None, None]) -> Iterator[bytes]:
    return _after(_FIRST_CHUNKS.submit(next, pcm, None), pcm)


def _after(first: Future[bytes | None], pcm: Generator[bytes, None, None]) -> Iterator[bytes]:
    """The first chunk once it is ready (an engine error is raised here, in the reader), then the rest."""
    try:
        chunk = first.result()
        if chunk is not None:
            yield chunk
            yield from pcm
    finally:
        wait([first])  # a generator still running on the pool's thread cannot be closed yet
        pcm.close()


def _recorded(record: SynthesisRecord, pcm: Iterator[bytes], sample_rate: int, started: float) -> Iterator[bytes]:
    """Pass the audio on, hash what leaves, and close the record whatever happens."""
    output, size = hashlib.sha256(), 0
    outcome = SynthesisRecord.Outcome.FAILED
    try:
        for chunk in pcm:
            if size == 0:
                record.first_audio_ms = (time.perf_counter() - started) * 1000
            output.update(chunk)
            size += len(chunk)
            yield chunk
        outcome = SynthesisRecord.Outcome.COMPLETED
    except GeneratorExit:
        outcome = SynthesisRecord.Outcome.INTERRUPTED
        raise
    finally:
        _close_record(record, outcome, output.hexdigest(), size / 2 / sample_rate)


def _close_record(record: SynthesisRecord, outcome: str, output_sha256: str, duration_s: float) -> None:
    with transaction.atomic():
        record.outcome, record.output_sha256, record.duration_s = outcome, output_sha256, round(duration_s, 3)
        record.completed_at = timezone.now()
        record.save(update_fields=["outcome", "output_sha256", "duration_s", "first_audio_ms", "completed_at"])
        if record.api_key is not None:  # audio that left counts against the key's day, whatever the outcome
            ratelimit.charge_audio(record.api_key, record.duration_s, record.completed_at)
            abuse.flag_usage_spike(record.api_key, record.completed_at)
        audit.record(
            "synthesis.completed",
            actor=audit.actor_for_key(record.api_key) if record.api_key else "system",
            organization_id=record.organization_id,
            target=record,
            data={
                "profile": record.profile_id, "purpose": record.purpose, "engine": record.engine,
                "key_prefix": record.api_key.prefix if record.api_key else None, "text_sha256": record.text_sha256,
                "output_sha256": output_sha256, "watermark_id": record.pk, "watermark_key_id": record.watermark_key_id,
                "duration_s": record.duration_s, "first_audio_ms": record.first_audio_ms, "outcome": outcome,
            },
        )
