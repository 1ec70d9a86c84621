from rest_framework.routers import SimpleRouter

from governance import views

router = SimpleRouter(trailing_slash="/?")
router.register("organizations", views.OrganizationViewSet)
router.register("owners", views.VoiceOwnerViewSet)
router.register("identity-verifications", views.IdentityVerificationViewSet)
router.register("profiles", views.VoiceProfileViewSet)
router.register("consents", views.ConsentArtifactViewSet)
router.register("keys", views.ApiKeyViewSet)
router.register("audit-events", views.AuditEventViewSet)
router.register("erasures", views.ErasureRequestViewSet)
router.register("samples", views.EnrollmentSampleViewSet)
router.register("challenges", views.VoiceChallengeViewSet)
router.register("protected-voices", views.ProtectedVoiceViewSet)

urlpatterns = router.urls
