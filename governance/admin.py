"""The compliance officers' admin: review, decide, revoke and erase, only in the organizations they oversee.

Every admin is scoped by organization (django-guardian grants, see governance.permissions) and read-only
in its forms: state changes only through the actions, and each action calls one governance service,
which writes the audit event. Nothing is added or deleted here: creation and erasure have services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth import get_permission_codename
from django.db.models import Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from guardian.admin import GuardedModelAdmin

from governance import abuse, apikeys, audit, consents, erasure, identity, profiles, reports
from governance.errors import GovernanceError
from governance.models import (
    AbuseFlag,
    EnrollmentSample,
    Organization,
    ProtectedVoice,
    VoiceChallenge,
    ApiKey,
    AuditEvent,
    ConsentArtifact,
    ErasureRequest,
    IdentityVerification,
    VoiceOwner,
    VoiceProfile,
)
from governance.permissions import officer_organization_ids

ORGANIZATION = ("organization", admin.RelatedOnlyFieldListFilter)


def _expiring_soon_horizon(now: datetime) -> datetime:
    return now + timedelta(days=settings.VOICEGATE_CONSENT_REMINDER_DAYS)


# ---- list filters ---------------------------------------------------------------------------------


class _IsSetFilter(admin.SimpleListFilter):
    """Yes/no on whether a nullable timestamp (revoked_at, erased_at) is set."""

    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() not in ("yes", "no"):
            return queryset
        return queryset.filter(**{f"{self.field}__isnull": self.value() == "no"})


class RevokedFilter(_IsSetFilter):
    title = "revoked"
    parameter_name = "revoked"
    field = "revoked_at"


class ErasedFilter(_IsSetFilter):
    title = "erased"
    parameter_name = "erased"
    field = "erased_at"


class _ExpiryFilter(admin.SimpleListFilter):
    """Expired, expiring within the reminder window, or live, on the column where validity ends."""

    title = "expiry"
    parameter_name = "expiry"
    field = ""

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        days = settings.VOICEGATE_CONSENT_REMINDER_DAYS
        return [("soon", f"Expiring within {days} days"), ("expired", "Expired"), ("live", "Live")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        conditions = self._conditions(timezone.now())
        return queryset.filter(conditions[self.value()]) if self.value() in conditions else queryset

    def _conditions(self, now: datetime) -> dict[str, Q]:
        ends = self.field
        return {
            "soon": Q(**{f"{ends}__gt": now, f"{ends}__lte": _expiring_soon_horizon(now)}),
            "expired": Q(**{f"{ends}__lte": now}),
            "live": Q(**{f"{ends}__gt": now}) | Q(**{f"{ends}__isnull": True}),
        }


class ConsentExpiryFilter(_ExpiryFilter):
    field = "valid_until"

    def _conditions(self, now: datetime) -> dict[str, Q]:
        # A consent is live only inside its window, not before valid_from.
        return {**super()._conditions(now), "live": Q(valid_from__lte=now, valid_until__gt=now)}


class IdentityExpiryFilter(_ExpiryFilter):
    field = "expires_at"


class ApiKeyStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("active", "Active"), ("suspended", "Suspended"), ("revoked", "Revoked"), ("expired", "Expired")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        now = timezone.now()
        conditions = {
            "active": Q(revoked_at__isnull=True, suspended_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now)),
            "suspended": Q(revoked_at__isnull=True, suspended_at__isnull=False),
            "revoked": Q(revoked_at__isnull=False),
            "expired": Q(revoked_at__isnull=True, expires_at__lte=now),
        }
        return queryset.filter(conditions[self.value()]) if self.value() in conditions else queryset


# ---- the scoped base -------------------------------------------------------------------------------


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Lists and pages see only the officer's organizations; forms are read-only; actions call services."""

    organization_path = "organization"  # the lookup from this model to its Organization
    list_per_page = 50

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_path}__in": sorted(officer_organization_ids(request.user))})

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> Model:
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            # Django's admin would redirect to the index with "doesn't exist"; a plain 404 is the same
            # answer the API gives, for a missing id and for another organization's id alike, and a
            # 302 would read as success to anything that checks status codes.
            raise Http404("No such object.")
        return obj

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> tuple[str, ...]:
        return tuple(self.fields or ())

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        """Actions need the model's "change" permission, though the forms themselves change nothing."""
        return request.user.has_perm(f"{self.opts.app_label}.{get_permission_codename('change', self.opts)}")

    def _each(self, request: HttpRequest, objects: Iterable[Any], operation: Callable[[Any], object], done: str) -> None:
        """Run a service per object; report successes and each refusal the service gave."""
        succeeded, refusals = 0, []
        for obj in objects:
            try:
                operation(obj)
            except GovernanceError as exc:
                refusals.append(f"{self.opts.verbose_name} #{obj.pk}: {exc.message}")
            else:
                succeeded += 1
        self.message_user(request, f"{succeeded} {self.opts.verbose_name_plural} {done}.", messages.SUCCESS)
        for refusal in refusals:
            self.message_user(request, refusal, messages.WARNING)


def admin_actor(request: HttpRequest) -> str:
    return audit.actor_for_user(request.user)


# ---- owners, profiles ------------------------------------------------------------------------------


@admin.register(VoiceOwner)
class VoiceOwnerAdmin(OrganizationScopedAdmin):
    # No wrapped_data_key or master_key_id: the data key never leaves the keyring.
    fields = ("display_name", "organization", "email", "external_ref", "created_at", "erased_at")
    list_display = ("pk", "display_name", "organization", "email", "created_at", "erased_at")
    list_display_links = ("pk", "display_name")
    list_filter = (ErasedFilter, ORGANIZATION)
    list_select_related = ("organization",)
    search_fields = ("full_name", "email", "external_ref")
    actions = ("erase_owners", "download_dossier")

    @admin.display(description="owner")
    def display_name(self, owner: VoiceOwner) -> str:
        return str(owner)  # "erased owner #id" once erased

    @admin.action(description="Erase selected owners (crypto-shredding; cannot be undone)", permissions=["act"])
    def erase_owners(self, request: HttpRequest, queryset: QuerySet[VoiceOwner]) -> HttpResponse | None:
        if request.POST.get("confirmed") != "yes":
            return self._erase_confirmation(request, queryset)
        reason = request.POST.get("reason", "").strip() or "erased in admin"
        for owner in queryset:
            completed = erasure.erase(owner, actor=admin_actor(request), reason=reason)
            self.message_user(request, f"Erased owner #{owner.pk}; certificate sha256 {completed.certificate_sha256}.")
        return None

    def _erase_confirmation(self, request: HttpRequest, queryset: QuerySet[VoiceOwner]) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Erase voice owners?",
            "opts": self.opts,
            "owners": list(queryset),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/governance/voiceowner/erase_confirmation.html", context)

    @admin.action(description="Download the owner's dossier (PDF)", permissions=["view"])
    def download_dossier(self, request: HttpRequest, queryset: QuerySet[VoiceOwner]) -> HttpResponse | None:
        return single_pdf_download(self, request, queryset, lambda o: reports.issue_owner_dossier(o, actor=admin_actor(request)), "owner-{pk}-dossier.pdf")


@admin.register(VoiceProfile)
class VoiceProfileAdmin(OrganizationScopedAdmin):
    organization_path = "owner__organization"
    # No embedding: it is biometric, even encrypted.
    fields = ("name", "owner", "status", "status_changed_at", "status_reason", "created_at")
    list_display = ("pk", "name", "owner", "organization", "status", "status_changed_at")
    list_display_links = ("pk", "name")
    list_filter = ("status", ("owner__organization", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("owner__organization",)
    search_fields = ("name",)
    actions = ("activate_profiles",)

    @admin.display(description="organization")
    def organization(self, profile: VoiceProfile) -> str:
        return str(profile.owner.organization)

    @admin.action(description="Activate selected profiles (owner and consent must be verified)", permissions=["act"])
    def activate_profiles(self, request: HttpRequest, queryset: QuerySet[VoiceProfile]) -> None:
        self._each(request, queryset, lambda p: profiles.activate(p, actor=admin_actor(request)), "activated")


# ---- consents, identity ----------------------------------------------------------------------------


@admin.register(ConsentArtifact)
class ConsentArtifactAdmin(OrganizationScopedAdmin):
    organization_path = "profile__owner__organization"
    # The recording is shown only as "present" and by the content hash that covers it.
    fields = (
        "profile", "statement_text", "purposes", "valid_from", "valid_until", "has_recording", "content_sha256",
        "verification_status", "verification_results", "verified_at", "revoked_at", "revocation_reason",
        "expired_at", "reminder_sent_at", "created_at",
    )
    list_display = ("pk", "profile", "owner", "purposes", "valid_from", "valid_until", "verification_status", "revoked_at")
    list_filter = (
        "verification_status", RevokedFilter, ConsentExpiryFilter,
        ("profile__owner__organization", admin.RelatedOnlyFieldListFilter),
    )
    list_select_related = ("profile__owner",)
    actions = ("verify_consents", "revoke_consents")

    @admin.display(description="owner")
    def owner(self, consent: ConsentArtifact) -> str:
        return str(consent.profile.owner)

    @admin.display(description="recording", boolean=True)
    def has_recording(self, consent: ConsentArtifact) -> bool:
        return consent.recording_id is not None

    @admin.action(description="Verify selected consents (officer override)", permissions=["act"])
    def verify_consents(self, request: HttpRequest, queryset: QuerySet[ConsentArtifact]) -> None:
        # consents.verify() refuses revoked or ended consents; filtering first gives one clear skipped count.
        eligible = list(
            queryset.exclude(verification_status=ConsentArtifact.Verification.VERIFIED).filter(
                revoked_at__isnull=True, valid_until__gt=timezone.now()
            )
        )
        justification = "verified in admin (officer override)"
        self._each(request, eligible, lambda c: consents.verify(c, actor=admin_actor(request), justification=justification), "verified")
        self._report_skipped(request, queryset.count() - len(eligible), "already verified, revoked or ended")

    @admin.action(description="Revoke selected consents", permissions=["act"])
    def revoke_consents(self, request: HttpRequest, queryset: QuerySet[ConsentArtifact]) -> None:
        live = list(queryset.filter(revoked_at__isnull=True))
        self._each(request, live, lambda c: consents.revoke(c, actor=admin_actor(request), reason="revoked in admin"), "revoked")
        self._report_skipped(request, queryset.count() - len(live), "already revoked")

    def _report_skipped(self, request: HttpRequest, skipped: int, why: str) -> None:
        if skipped:
            self.message_user(request, f"{skipped} skipped: {why}.", messages.WARNING)


@admin.register(IdentityVerification)
class IdentityVerificationAdmin(OrganizationScopedAdmin):
    organization_path = "owner__organization"
    # The ID scan itself is never shown; the officer's record of it is the evidence hash.
    fields = (
        "owner", "method", "status", "has_evidence", "evidence_sha256", "decided_by", "decided_at",
        "decision_note", "expires_at", "created_at",
    )
    list_display = ("pk", "owner", "method", "status", "decided_by", "decided_at", "expires_at", "created_at")
    list_filter = ("status", "method", IdentityExpiryFilter, ("owner__organization", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("owner", "decided_by")
    actions = ("approve_verifications", "reject_verifications")

    @admin.display(description="evidence", boolean=True)
    def has_evidence(self, verification: IdentityVerification) -> bool:
        return verification.evidence_id is not None

    @admin.action(description="Approve selected pending identity verifications", permissions=["act"])
    def approve_verifications(self, request: HttpRequest, queryset: QuerySet[IdentityVerification]) -> None:
        self._decide(request, queryset, approve=True)

    @admin.action(description="Reject selected pending identity verifications", permissions=["act"])
    def reject_verifications(self, request: HttpRequest, queryset: QuerySet[IdentityVerification]) -> None:
        self._decide(request, queryset, approve=False)

    def _decide(self, request: HttpRequest, queryset: QuerySet[IdentityVerification], *, approve: bool) -> None:
        verb = "approved" if approve else "rejected"

        def decide(verification: IdentityVerification) -> IdentityVerification:
            return identity.decide(verification, approve=approve, officer=request.user, note=f"{verb} in admin")

        self._each(request, queryset, decide, verb)


# ---- keys, erasures, audit ---------------------------------------------------------------------------


@admin.register(ApiKey)
class ApiKeyAdmin(OrganizationScopedAdmin):
    # Never secret_hash. Keys are minted by the API and `createapikey`, which show the secret once.
    fields = (
        "name", "organization", "prefix", "state", "actions", "purposes", "profiles", "allowed_engines",
        "rate_limit_per_minute", "audio_seconds_per_day", "expires_at", "revoked_at", "suspended_at", "created_by",
        "created_at", "last_used_at",
    )
    list_display = ("prefix", "name", "organization", "state", "expires_at", "revoked_at", "last_used_at")
    list_filter = (ApiKeyStateFilter, ORGANIZATION)
    list_select_related = ("organization",)
    search_fields = ("name", "prefix")
    actions = ("revoke_keys", "suspend_keys", "reinstate_keys")

    @admin.display(description="state")
    def state(self, key: ApiKey) -> str:
        return key.state_at(timezone.now())

    @admin.action(description="Revoke selected API keys", permissions=["act"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        live = queryset.filter(revoked_at__isnull=True)
        self._each(request, live, lambda k: apikeys.revoke(k, actor=admin_actor(request), reason="revoked in admin"), "revoked")

    @admin.action(description="Suspend selected API keys (refused until reinstated)", permissions=["act"])
    def suspend_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        live = queryset.filter(suspended_at__isnull=True)
        self._each(request, live, lambda k: abuse.suspend_key(k, actor=admin_actor(request)), "suspended")

    @admin.action(description="Reinstate selected suspended API keys", permissions=["act"])
    def reinstate_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        suspended = queryset.filter(suspended_at__isnull=False)
        self._each(request, suspended, lambda k: abuse.reinstate_key(k, actor=admin_actor(request)), "reinstated")


@admin.register(AbuseFlag)
class AbuseFlagAdmin(OrganizationScopedAdmin):
    """The review queue: usage spikes and fraud-pattern texts, each with its key. The text itself is never
    stored, so never shown: the flag holds its hash and the patterns that matched."""

    organization_path = "api_key__organization"
    fields = (
        "kind", "api_key", "key_state", "detail", "text_sha256", "status", "key_suspended_automatically",
        "created_at", "reviewed_by", "reviewed_at",
    )
    list_display = ("pk", "created_at", "kind", "api_key", "key_state", "status", "summary")
    list_filter = ("status", "kind", ("api_key__organization", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("api_key__organization",)
    search_fields = ("api_key__prefix", "api_key__name", "text_sha256")
    ordering = ("-created_at",)
    actions = ("dismiss_flags", "suspend_keys", "reinstate_keys")

    @admin.display(description="key state")
    def key_state(self, flag: AbuseFlag) -> str:
        return flag.api_key.state_at(timezone.now())

    @admin.display(description="detail")
    def summary(self, flag: AbuseFlag) -> str:
        if flag.kind == AbuseFlag.Kind.FRAUD_PATTERN:
            return ", ".join(flag.detail.get("patterns", []))
        return f"{flag.detail.get('measure')}: {flag.detail.get('today')} vs mean {flag.detail.get('baseline_mean')}"

    @admin.action(description="Dismiss selected flags (no abuse found)", permissions=["act"])
    def dismiss_flags(self, request: HttpRequest, queryset: QuerySet[AbuseFlag]) -> None:
        self._each(request, queryset, lambda f: abuse.dismiss_flag(f, actor=admin_actor(request)), "dismissed")

    @admin.action(description="Suspend the flagged keys (upholds the flags)", permissions=["act"])
    def suspend_keys(self, request: HttpRequest, queryset: QuerySet[AbuseFlag]) -> None:
        self._each(request, queryset, lambda f: abuse.suspend_key(f.api_key, actor=admin_actor(request), flag=f), "upheld")

    @admin.action(description="Reinstate the flagged keys (dismisses open flags)", permissions=["act"])
    def reinstate_keys(self, request: HttpRequest, queryset: QuerySet[AbuseFlag]) -> None:
        self._each(request, queryset, lambda f: abuse.reinstate_key(f.api_key, actor=admin_actor(request), flag=f), "reviewed")


@admin.register(ErasureRequest)
class ErasureRequestAdmin(OrganizationScopedAdmin):
    organization_path = "owner__organization"
    fields = ("owner", "requested_by", "reason", "status", "created_at", "completed_at", "certificate_sha256", "certificate")
    list_display = ("pk", "owner", "status", "requested_by", "created_at", "completed_at", "certificate_sha256")
    list_filter = ("status", ("owner__organization", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("owner",)
    actions = ("download_certificate",)

    @admin.action(description="Download the erasure certificate (PDF)")
    def download_certificate(self, request: HttpRequest, queryset: QuerySet[ErasureRequest]) -> HttpResponse | None:
        return single_pdf_download(self, request, queryset, lambda e: reports.issue_erasure_certificate(e, actor=admin_actor(request)), "erasure-{pk}-certificate.pdf")


def single_pdf_download(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Any], render: Callable[[Any], bytes], name: str
) -> HttpResponse | None:
    """An action that downloads one object's report; the service writes the audit event."""
    if queryset.count() != 1:
        model_admin.message_user(request, "Select exactly one.", messages.WARNING)
        return None
    obj = queryset.get()
    try:
        content = render(obj)
    except GovernanceError as error:
        model_admin.message_user(request, error.message, messages.WARNING)
        return None
    response = HttpResponse(content, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{name.format(pk=obj.pk)}"'
    return response


@admin.register(EnrollmentSample)
class EnrollmentSampleAdmin(OrganizationScopedAdmin):
    """Enrollment jobs and their progress; the audio itself is never shown."""

    organization_path = "profile__owner__organization"
    fields = ("profile", "verdict", "job_status", "job_error", "job_attempts", "quality_report", "audio_sha256",
              "audio_retained_until", "created_at", "finished_at")
    list_display = ("pk", "profile", "verdict", "job_status", "job_attempts", "created_at", "finished_at")
    list_filter = ("job_status", "verdict", ("profile__owner__organization", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("profile",)


@admin.register(VoiceChallenge)
class VoiceChallengeAdmin(OrganizationScopedAdmin):
    organization_path = "owner__organization"
    fields = ("owner", "profile", "phrase", "status", "expires_at", "results", "identity_verification", "created_at")
    list_display = ("pk", "owner", "profile", "status", "expires_at", "created_at")
    list_filter = ("status", ("owner__organization", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("owner", "profile")


@admin.register(ProtectedVoice)
class ProtectedVoiceAdmin(OrganizationScopedAdmin):
    organization_path = "owner__organization"
    fields = ("label", "owner", "applies_to_all_organizations", "registered_by", "created_at")
    list_display = ("pk", "label", "applies_to_all_organizations", "registered_by", "created_at")
    list_filter = ("applies_to_all_organizations", ("owner__organization", admin.RelatedOnlyFieldListFilter))


@admin.register(AuditEvent)
class AuditEventAdmin(OrganizationScopedAdmin):
    """Read-only: the chain is written by governance.audit.record() alone. System events (no organization)
    are for superusers only."""

    organization_path = "organization_id"
    fields = (
        "sequence", "created_at", "actor", "action", "organization_id", "target_type", "target_id", "data",
        "previous_hash", "row_hash", "row_hmac",
    )
    list_display = ("sequence", "created_at", "actor", "action", "target")
    list_filter = ("action", "target_type")
    search_fields = ("actor", "action", "target_id")
    ordering = ("-sequence",)
    show_full_result_count = False  # the log grows without bound; skip the second COUNT(*)

    @admin.display(description="target")
    def target(self, event: AuditEvent) -> str:
        return f"{event.target_type} #{event.target_id}" if event.target_type else "—"

    def get_urls(self) -> list[Any]:
        report = path("report/", self.admin_site.admin_view(self.audit_report_view), name="governance_auditevent_report")
        return [report, *super().get_urls()]

    def audit_report_view(self, request: HttpRequest) -> HttpResponse:
        """An officer picks one of their organizations and a period; the PDF comes back as a download."""
        organizations = Organization.objects.filter(pk__in=officer_organization_ids(request.user)).order_by("name")
        form = AuditReportForm(request.GET or None, organizations=organizations)
        if not form.is_valid():
            context = {**self.admin_site.each_context(request), "form": form, "title": "Audit report"}
            return TemplateResponse(request, "admin/governance/auditevent/report_form.html", context)
        data = form.cleaned_data
        content = reports.issue_audit_report(data["organization"], data["start"], data["end"], actor=admin_actor(request))
        response = HttpResponse(content, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="audit-{data["organization"].slug}-{data["start"]}-{data["end"]}.pdf"'
        return response


class AuditReportForm(forms.Form):
    organization = forms.ModelChoiceField(queryset=Organization.objects.none())
    start = forms.DateField(help_text="YYYY-MM-DD")
    end = forms.DateField(help_text="YYYY-MM-DD, inclusive")

    def __init__(self, *args: Any, organizations: QuerySet[Organization], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["organization"].queryset = organizations

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("start") and data.get("end") and data["end"] < data["start"]:
            raise forms.ValidationError("The period ends before it starts.")
        return data


@admin.register(Organization)
class OrganizationAdmin(GuardedModelAdmin):
    """Superusers create tenants and grant officers `oversee_organization` on the "Object permissions" page."""

    list_display = ("name", "slug", "created_at")
    prepopulated_fields = {"slug": ("name",)}
    search_fields = ("name", "slug")
