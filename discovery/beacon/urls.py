"""Beacon v2 routes, mounted at /api/beacon/v2/ (API.md)."""

from django.urls import path

from discovery.beacon import api

app_name = "beacon"

urlpatterns = [
    path("", api.BeaconInfoApi.as_view(), name="root"),
    path("info", api.BeaconInfoApi.as_view(), name="info"),
    path("service-info", api.BeaconServiceInfoApi.as_view(), name="service-info"),
    path("configuration", api.BeaconConfigurationApi.as_view(), name="configuration"),
    path("map", api.BeaconMapApi.as_view(), name="map"),
    path("entry_types", api.BeaconEntryTypesApi.as_view(), name="entry-types"),
    path("filtering_terms", api.BeaconFilteringTermsApi.as_view(), name="filtering-terms"),
    path("datasets", api.BeaconDatasetsApi.as_view(), name="datasets"),
    path("g_variants", api.BeaconGenomicVariantsApi.as_view(), name="g-variants"),
]
