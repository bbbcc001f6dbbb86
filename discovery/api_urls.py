from django.urls import path

from discovery.api import DatasetBeaconPolicyApi

urlpatterns = [
    path(
        "datasets/<uuid:dataset_id>/beacon",
        DatasetBeaconPolicyApi.as_view(),
        name="dataset-beacon-policy",
    ),
]
