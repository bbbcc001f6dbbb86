"""GA4GH htsget 1.3 routes, mounted at /ga4gh/htsget/v1/."""

from django.urls import path

from marketplace.ga4gh.htsget import (
    HtsgetBlocksApi,
    HtsgetReadsTicketApi,
    HtsgetServiceInfoApi,
    HtsgetVariantsServiceInfoApi,
    HtsgetVariantsTicketApi,
)

app_name = "htsget"

urlpatterns = [
    path("reads/service-info", HtsgetServiceInfoApi.as_view(), name="reads-service-info"),
    path(
        "variants/service-info",
        HtsgetVariantsServiceInfoApi.as_view(),
        name="variants-service-info",
    ),
    path("reads/<str:object_id>", HtsgetReadsTicketApi.as_view(), name="reads"),
    path("variants/<str:object_id>", HtsgetVariantsTicketApi.as_view(), name="variants"),
    path("blocks/<str:object_id>", HtsgetBlocksApi.as_view(), name="blocks"),
]
