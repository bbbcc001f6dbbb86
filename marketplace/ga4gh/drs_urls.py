"""GA4GH DRS 1.4 routes, mounted at /ga4gh/drs/v1/ (the prefix DRS 1.4 "servers" requires)."""

from django.urls import path

from marketplace.ga4gh.drs import DrsAccessUrlApi, DrsDownloadApi, DrsObjectApi, DrsServiceInfoApi

app_name = "drs"

urlpatterns = [
    path("service-info", DrsServiceInfoApi.as_view(), name="service-info"),
    path("objects/<str:object_id>", DrsObjectApi.as_view(), name="object"),
    path(
        "objects/<str:object_id>/access/<str:access_id>",
        DrsAccessUrlApi.as_view(),
        name="access-url",
    ),
    path("download/<str:token>", DrsDownloadApi.as_view(), name="download"),
]
