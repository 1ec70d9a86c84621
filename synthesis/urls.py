from django.urls import path, re_path

from synthesis.views import SynthesisJobAudioView, SynthesisJobsView, SynthesisJobView, SynthesizeView

urlpatterns = [
    path("synthesize", SynthesizeView.as_view(), name="synthesize"),
    # The trailing slash optional, as on the governance routes.
    re_path(r"^synthesis-jobs/?$", SynthesisJobsView.as_view(), name="synthesis-jobs"),
    re_path(r"^synthesis-jobs/(?P<job_id>[0-9]+)/?$", SynthesisJobView.as_view(), name="synthesis-job"),
    re_path(r"^synthesis-jobs/(?P<job_id>[0-9]+)/audio/?$", SynthesisJobAudioView.as_view(), name="synthesis-job-audio"),
]
