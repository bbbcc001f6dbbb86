"""REST API v1 routes (API.md). Every path here is part of the contract."""

from django.urls import path

from marketplace.api.access_requests import (
    AccessRequestApproveApi,
    AccessRequestDetailApi,
    AccessRequestFileDownloadApi,
    AccessRequestPermitCallApi,
    AccessRequestRejectApi,
    AccessRequestRevokeApi,
    AccessRequestsApi,
    AccessRequestWithdrawApi,
)
from marketplace.api.accounts import Crypt4ghKeyApi, MeApi, RegisterApi, TokenApi
from marketplace.api.datasets import (
    DatasetDetailApi,
    DatasetEarningsApi,
    DatasetsApi,
    DatasetWithdrawApi,
)
from marketplace.api.notifications import NotificationsApi, NotificationsReadApi
from marketplace.api.passports import PassportApi
from marketplace.api.tiers import DatasetTiersApi

app_name = "api"

urlpatterns = [
    path("auth/register", RegisterApi.as_view(), name="register"),
    path("auth/token", TokenApi.as_view(), name="token"),
    path("me", MeApi.as_view(), name="me"),
    path("me/crypt4gh-key", Crypt4ghKeyApi.as_view(), name="crypt4gh-key"),
    path("me/passport", PassportApi.as_view(), name="passport"),
    path("notifications", NotificationsApi.as_view(), name="notifications"),
    path("notifications/read", NotificationsReadApi.as_view(), name="notifications-read"),
    path("datasets", DatasetsApi.as_view(), name="datasets"),
    path("datasets/<uuid:dataset_id>", DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<uuid:dataset_id>/tiers", DatasetTiersApi.as_view(), name="dataset-tiers"),
    path("access-requests", AccessRequestsApi.as_view(), name="access-requests"),
    path(
        "access-requests/<uuid:request_id>", AccessRequestDetailApi.as_view(), name="access-request"
    ),
    path(
        "access-requests/<uuid:request_id>/approve",
        AccessRequestApproveApi.as_view(),
        name="access-request-approve",
    ),
    path(
        "access-requests/<uuid:request_id>/reject",
        AccessRequestRejectApi.as_view(),
        name="access-request-reject",
    ),
    path(
        "access-requests/<uuid:request_id>/files/<uuid:file_id>",
        AccessRequestFileDownloadApi.as_view(),
        name="access-request-file",
    ),
    path(
        "access-requests/<uuid:request_id>/revoke",
        AccessRequestRevokeApi.as_view(),
        name="access-request-revoke",
    ),
    path(
        "access-requests/<uuid:request_id>/permit-call",
        AccessRequestPermitCallApi.as_view(),
        name="access-request-permit-call",
    ),
    path(
        "access-requests/<uuid:request_id>/withdraw",
        AccessRequestWithdrawApi.as_view(),
        name="access-request-withdraw",
    ),
    path(
        "datasets/<uuid:dataset_id>/earnings", DatasetEarningsApi.as_view(), name="dataset-earnings"
    ),
    path(
        "datasets/<uuid:dataset_id>/withdraw", DatasetWithdrawApi.as_view(), name="dataset-withdraw"
    ),
]
