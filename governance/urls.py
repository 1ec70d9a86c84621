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

urlpatterns = router.urls
