"""URL map: web UI at /, REST API under /api/v1/, GA4GH DRS under /ga4gh/drs/v1/, schema and
docs, health, admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from core.views import HealthApi, api_not_found
from marketplace.api.passports import JwksApi
from marketplace.web.twofactor import VerifiedAdminSite

# Staff reach the admin only after the second factor (django-otp's documented pattern).
admin.site.__class__ = VerifiedAdminSite

urlpatterns = [
    path("", include("marketplace.web.urls")),
    path("api/v1/", include("marketplace.api.urls")),
    path("api/v1/", include("ledger.api.urls")),
    path("api/v1/", include("genomics.api.urls")),
    path("ga4gh/drs/v1/", include("marketplace.ga4gh.drs_urls")),
    path("ga4gh/htsget/v1/", include("marketplace.ga4gh.htsget_urls")),
    path("api/v1/", include("discovery.api_urls")),
    path("api/beacon/v2/", include("discovery.beacon.urls")),
    path("discovery/", include("discovery.web.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("health", HealthApi.as_view(), name="health"),
    # The public keys of our GA4GH Passport visas (their `jku`).
    path(".well-known/jwks.json", JwksApi.as_view(), name="jwks"),
    path("admin/", admin.site.urls),
    # Unknown API paths answer in the API's error shape even with DEBUG on.
    re_path(r"^api/", api_not_found),
    re_path(r"^ga4gh/drs/", api_not_found),
    re_path(r"^ga4gh/htsget/", api_not_found),
]

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.page_not_found"
handler500 = "core.views.server_error"
