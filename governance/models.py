"""Governance domain: who owns a voice, what they consented to, and who may use it.

Business rules live in the service modules (policy, lifecycle, keyring, audit, erasure, consents);
the models hold state and small queries about it.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone


class Organization(models.Model):
    """A tenant: every owner, profile and key belongs to exactly one."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        permissions = [("oversee_organization", "Oversee the organization's voices as a compliance officer")]

    def __str__(self) -> str:
        return self.name


class VoiceOwner(models.Model):
    """The data subject whose voice is cloned. Erasure scrubs the personal fields and the data key."""

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="owners")
    full_name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    external_ref = models.CharField(max_length=200, blank=True, help_text="The organization's own id for this person")
    created_at = models.DateTimeField(default=timezone.now)
    erased_at = models.DateTimeField(null=True, blank=True)
    # The owner's AES-256 data key, wrapped (AES-GCM) by the master key; NULL once crypto-shredded.
    wrapped_data_key = models.BinaryField(null=True, editable=False)
    master_key_id = models.CharField(max_length=16, blank=True, editable=False)

    def __str__(self) -> str:
        return self.full_name if self.erased_at is None else f"erased owner #{self.pk}"

    @property
    def is_erased(self) -> bool:
        return self.erased_at is not None


class BiometricBlob(models.Model):
    """One encrypted biometric object (audio, consent recording, embedding, ID scan) in media storage."""

    class Kind(models.TextChoices):
        SAMPLE_AUDIO = "sample_audio"
        CONSENT_RECORDING = "consent_recording"
        EMBEDDING = "embedding"
        ID_SCAN = "id_scan"
        VOICE_STATE = "voice_state"

    owner = models.ForeignKey(VoiceOwner, on_delete=models.CASCADE, related_name="blobs")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    storage_name = models.CharField(max_length=300, unique=True)
    content_type = models.CharField(max_length=100, blank=True)
    plaintext_size = models.PositiveBigIntegerField()
    ciphertext_sha256 = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk}"


class IdentityVerification(models.Model):
    class Method(models.TextChoices):
        DOCUMENT = "document", "Officer-attested document"
        VERIFIED_CALL = "verified_call", "Verified call"
        VOICE_CHALLENGE = "voice_challenge", "Voice challenge"

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    owner = models.ForeignKey(VoiceOwner, on_delete=models.CASCADE, related_name="identity_verifications")
    method = models.CharField(max_length=32, choices=Method.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    evidence_sha256 = models.CharField(max_length=64, blank=True, help_text="Hash of the evidence the officer saw")
    evidence = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.get_method_display()} #{self.pk} ({self.status})"

    def is_valid_at(self, now: datetime) -> bool:
        return self.status == self.Status.APPROVED and (self.expires_at is None or self.expires_at > now)


class VoiceProfile(models.Model):
    """A cloneable voice. Its status changes only through governance.lifecycle.transition()."""

    class Status(models.TextChoices):
        DRAFT = "draft"
        PENDING = "pending"
        ACTIVE = "active"
        SUSPENDED = "suspended"
        EXPIRED = "expired"
        RETIRED = "retired"
        ERASED = "erased"

    owner = models.ForeignKey(VoiceOwner, on_delete=models.PROTECT, related_name="profiles")
    name = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    status_changed_at = models.DateTimeField(default=timezone.now)
    status_reason = models.CharField(max_length=300, blank=True)
    embedding = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Quality summary and similarity to protected voices and other owners' profiles (scores, no biometrics).
    enrollment_report = models.JSONField(default=dict, blank=True)
    held_for_review = models.BooleanField(default=False, help_text="Too similar to a protected voice or another owner")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    @property
    def organization_id(self) -> int:
        return self.owner.organization_id

    def live_consents(self, now: datetime) -> models.QuerySet[ConsentArtifact]:
        """Verified, unrevoked consents whose window contains `now` (for any purpose)."""
        return self.consents.filter(
            verification_status=ConsentArtifact.Verification.VERIFIED,
            revoked_at__isnull=True,
            valid_from__lte=now,
            valid_until__gt=now,
        )


class ConsentArtifact(models.Model):
    """The owner's recorded consent to cloning for named purposes, over a validity window."""

    class Verification(models.TextChoices):
        UNVERIFIED = "unverified"
        VERIFIED = "verified"
        REJECTED = "rejected"

    profile = models.ForeignKey(VoiceProfile, on_delete=models.PROTECT, related_name="consents")
    statement_text = models.TextField()
    purposes = models.JSONField(default=list)
    valid_from = models.DateTimeField()
    valid_until = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    revocation_reason = models.CharField(max_length=300, blank=True)
    recording = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    verification_status = models.CharField(max_length=16, choices=Verification.choices, default=Verification.UNVERIFIED)
    verification_results = models.JSONField(default=dict, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification_job_status = models.CharField(max_length=16, blank=True, help_text="Automated check job, when one ran")
    content_sha256 = models.CharField(max_length=64, help_text="Hash of statement, purposes, window and recording")
    expired_at = models.DateTimeField(null=True, blank=True, help_text="When the expiry job processed it")
    reminder_sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"consent #{self.pk} for {', '.join(self.purposes)} until {self.valid_until:%Y-%m-%d}"

    def covers(self, purpose: str, now: datetime) -> bool:
        return (
            self.verification_status == self.Verification.VERIFIED
            and self.revoked_at is None
            and self.valid_from <= now < self.valid_until
            and purpose in self.purposes
        )


class ApiKey(models.Model):
    """A product team's credential. The secret is shown once; only its peppered hash is kept."""

    class Action(models.TextChoices):
        SYNTHESIZE = "synthesize"
        ENROLL = "enroll"
        DETECT = "detect"
        READ_AUDIT = "read-audit"

    organization = models.ForeignKey(Organization, on_delete=models.PROTECT, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    profiles = models.ManyToManyField(VoiceProfile, blank=True, related_name="api_keys")
    actions = models.JSONField(default=list)
    purposes = models.JSONField(default=list)
    rate_limit_per_minute = models.PositiveIntegerField()
    audio_seconds_per_day = models.PositiveIntegerField(
        null=True, blank=True, help_text="Synthesized audio per UTC day; empty: VOICEGATE_DEFAULT_AUDIO_SECONDS_PER_DAY"
    )
    allowed_engines = models.JSONField(default=list, blank=True, help_text="Engines this key may use; empty: every engine offered")
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Set by governance.abuse (an officer, or a flag under VOICEGATE_SUSPEND_FLAGGED_KEYS); only an officer clears it.
    suspended_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    def is_usable_at(self, now: datetime) -> bool:
        return self.revoked_at is None and self.suspended_at is None and (self.expires_at is None or self.expires_at > now)

    def state_at(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.suspended_at is not None:
            return "suspended"
        return "active" if self.is_usable_at(now) else "expired"

    def allows_engine(self, engine: str) -> bool:
        return not self.allowed_engines or engine in self.allowed_engines


class KeyMinuteWindow(models.Model):
    """The key's current one-minute request window: one row per key, reset in place by the UPDATE that opens
    the next window, so concurrent requests on any node count against the same row."""

    api_key = models.OneToOneField(ApiKey, on_delete=models.CASCADE, primary_key=True, related_name="+")
    window_start = models.DateTimeField()
    requests = models.PositiveIntegerField(default=0)


class KeyDailyUsage(models.Model):
    """A key's usage on one UTC day: requests the gate allowed and seconds of audio delivered. Kept as history:
    the usage-spike check compares today with the days before."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    requests = models.PositiveIntegerField(default=0)
    audio_seconds = models.FloatField(default=0.0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["api_key", "day"], name="one_usage_row_per_key_and_day")]

    def __str__(self) -> str:
        return f"key #{self.api_key_id} on {self.day}: {self.requests} requests, {self.audio_seconds:.1f} s"


class AbuseFlag(models.Model):
    """Something about a key's use for an officer to review. Written only by governance.abuse; never holds the
    synthesis text (only its hash and which pattern matched)."""

    class Kind(models.TextChoices):
        USAGE_SPIKE = "usage_spike", "Usage far above the key's baseline"
        FRAUD_PATTERN = "fraud_pattern", "Text matches a fraud pattern"

    class Status(models.TextChoices):
        OPEN = "open"
        DISMISSED = "dismissed"
        UPHELD = "upheld", "Upheld (key suspended)"

    api_key = models.ForeignKey(ApiKey, on_delete=models.PROTECT, related_name="abuse_flags")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True)
    text_sha256 = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    key_suspended_automatically = models.BooleanField(default=False)
    reviewed_by = models.CharField(max_length=100, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["api_key", "kind", "created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"


class _AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: object) -> int:
        raise PermissionError("audit events are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditEvent(models.Model):
    """One append-only, hash-chained audit row. Written only by governance.audit.record()."""

    objects = _AppendOnlyQuerySet.as_manager()

    sequence = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.CharField(max_length=100)
    action = models.CharField(max_length=64, db_index=True)
    organization_id = models.BigIntegerField(null=True, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    data = models.JSONField(default=dict)
    previous_hash = models.CharField(max_length=64)
    row_hash = models.CharField(max_length=64)
    row_hmac = models.CharField(max_length=64)

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"#{self.sequence} {self.action} by {self.actor}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise PermissionError("audit events are append-only")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise PermissionError("audit events are append-only")


class AuditChainHead(models.Model):
    """A single row locked while appending, so concurrent writers cannot fork the chain."""

    last_sequence = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64)


class ErasureRequest(models.Model):
    class Status(models.TextChoices):
        RECEIVED = "received"
        COMPLETED = "completed"

    owner = models.ForeignKey(VoiceOwner, on_delete=models.PROTECT, related_name="erasure_requests")
    requested_by = models.CharField(max_length=100)
    reason = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    created_at = models.DateTimeField(default=timezone.now)
    completed_at = models.DateTimeField(null=True, blank=True)
    certificate = models.JSONField(default=dict, blank=True)
    certificate_sha256 = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"erasure #{self.pk} of owner #{self.owner_id} ({self.status})"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EnrollmentSample(models.Model):
    """One uploaded voice sample: judged by the quality gate, embedded, then (by default) its audio deleted."""

    class Verdict(models.TextChoices):
        PENDING = "pending"
        ACCEPTED = "accepted"
        REJECTED = "rejected"

    profile = models.ForeignKey(VoiceProfile, on_delete=models.PROTECT, related_name="samples")
    audio = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    embedding = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    audio_sha256 = models.CharField(max_length=64)
    verdict = models.CharField(max_length=16, choices=Verdict.choices, default=Verdict.PENDING)
    quality_report = models.JSONField(default=dict, blank=True)
    job_status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    job_error = models.CharField(max_length=500, blank=True)
    job_attempts = models.PositiveSmallIntegerField(default=0)
    audio_retained_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"sample #{self.pk} of profile #{self.profile_id} ({self.verdict})"


class VoiceChallenge(models.Model):
    """A liveness check: the owner speaks a random phrase before it expires; words and voice are checked."""

    class Status(models.TextChoices):
        ISSUED = "issued"
        CHECKING = "checking"
        PASSED = "passed"
        FAILED = "failed"
        EXPIRED = "expired"

    owner = models.ForeignKey(VoiceOwner, on_delete=models.PROTECT, related_name="challenges")
    profile = models.ForeignKey(VoiceProfile, on_delete=models.PROTECT, related_name="challenges")
    phrase = models.CharField(max_length=300)
    expires_at = models.DateTimeField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ISSUED)
    response = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    results = models.JSONField(default=dict, blank=True)
    job_error = models.CharField(max_length=500, blank=True)
    identity_verification = models.OneToOneField(
        IdentityVerification, null=True, blank=True, on_delete=models.SET_NULL, related_name="challenge"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"challenge #{self.pk} ({self.status})"


class ProtectedVoice(models.Model):
    """A voice that must never be cloned. The person is a data subject (VoiceOwner) like any other."""

    owner = models.OneToOneField(VoiceOwner, on_delete=models.PROTECT, related_name="protected_voice")
    label = models.CharField(max_length=200)
    applies_to_all_organizations = models.BooleanField(default=False, help_text="Operator-level protection")
    embedding = models.ForeignKey(BiometricBlob, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    registered_by = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.label
