"""REST API v1 routes (API.md). Every path here is part of the contract."""

from django.urls import path

from marketplace.api.access_requests import (
    AccessRequestApproveApi,
    AccessRequestDetailApi,
    AccessRequestFileDownloadApi,
    AccessRequestPermitCallApi,
    AccessRequestRejectApi,
    AccessRequestRenewApi,
    AccessRequestRevokeApi,
    AccessRequestsApi,
    AccessRequestWithdrawApi,
)
from marketplace.api.accounts import Crypt4ghKeyApi, MeApi, RegisterApi, TokenApi
from marketplace.api.agreements import (
    DatasetAgreementApi,
    DatasetBlockLiftApi,
    DatasetBlocksApi,
)
from marketplace.api.attachments import AccessRequestAttachmentApi, AccessRequestAttachmentsApi
from marketplace.api.committees import (
    AccessRequestMessagesApi,
    AccessRequestResubmitApi,
    AccessRequestReturnApi,
    AccessRequestVoteApi,
    DacDetailApi,
    DacMembersApi,
    DacsApi,
)
from marketplace.api.datasets import (
    DatasetDetailApi,
    DatasetEarningsApi,
    DatasetsApi,
    DatasetWithdrawApi,
)
from marketplace.api.files import FileRecompressApi
from marketplace.api.notifications import NotificationsApi, NotificationsReadApi
from marketplace.api.passports import PassportApi
from marketplace.api.rights import MeDisclosuresApi, MeEraseApi, MeExportApi
from marketplace.api.tiers import DatasetTiersApi

app_name = "api"

urlpatterns = [
    path("auth/register", RegisterApi.as_view(), name="register"),
    path("auth/token", TokenApi.as_view(), name="token"),
    path("me", MeApi.as_view(), name="me"),
    path("me/crypt4gh-key", Crypt4ghKeyApi.as_view(), name="crypt4gh-key"),
    path("me/passport", PassportApi.as_view(), name="passport"),
    path("me/disclosures", MeDisclosuresApi.as_view(), name="disclosures"),
    path("me/export", MeExportApi.as_view(), name="export"),
    path("me/erase", MeEraseApi.as_view(), name="erase"),
    path("notifications", NotificationsApi.as_view(), name="notifications"),
    path("notifications/read", NotificationsReadApi.as_view(), name="notifications-read"),
    path("datasets", DatasetsApi.as_view(), name="datasets"),
    path("datasets/<uuid:dataset_id>", DatasetDetailApi.as_view(), name="dataset"),
    path("datasets/<uuid:dataset_id>/tiers", DatasetTiersApi.as_view(), name="dataset-tiers"),
    path("files/<uuid:file_id>/recompress", FileRecompressApi.as_view(), name="file-recompress"),
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
        "access-requests/<uuid:request_id>/attachments",
        AccessRequestAttachmentsApi.as_view(),
        name="access-request-attachments",
    ),
    path(
        "access-requests/<uuid:request_id>/attachments/<uuid:attachment_id>",
        AccessRequestAttachmentApi.as_view(),
        name="access-request-attachment",
    ),
    path(
        "access-requests/<uuid:request_id>/renew",
        AccessRequestRenewApi.as_view(),
        name="access-request-renew",
    ),
    path(
        "access-requests/<uuid:request_id>/withdraw",
        AccessRequestWithdrawApi.as_view(),
        name="access-request-withdraw",
    ),
    path(
        "datasets/<uuid:dataset_id>/earnings", DatasetEarningsApi.as_view(), name="dataset-earnings"
    ),
    # Committees (issue 19 §1, §2)
    path("dacs", DacsApi.as_view(), name="dacs"),
    path("dacs/<uuid:dac_id>", DacDetailApi.as_view(), name="dac"),
    path("dacs/<uuid:dac_id>/members", DacMembersApi.as_view(), name="dac-members"),
    path(
        "access-requests/<uuid:request_id>/votes",
        AccessRequestVoteApi.as_view(),
        name="access-request-votes",
    ),
    path(
        "access-requests/<uuid:request_id>/return",
        AccessRequestReturnApi.as_view(),
        name="access-request-return",
    ),
    path(
        "access-requests/<uuid:request_id>/resubmit",
        AccessRequestResubmitApi.as_view(),
        name="access-request-resubmit",
    ),
    path(
        "access-requests/<uuid:request_id>/messages",
        AccessRequestMessagesApi.as_view(),
        name="access-request-messages",
    ),
    path(
        "datasets/<uuid:dataset_id>/withdraw", DatasetWithdrawApi.as_view(), name="dataset-withdraw"
    ),
    path(
        "datasets/<uuid:dataset_id>/agreement",
        DatasetAgreementApi.as_view(),
        name="dataset-agreement",
    ),
    path("datasets/<uuid:dataset_id>/blocks", DatasetBlocksApi.as_view(), name="dataset-blocks"),
    path(
        "datasets/<uuid:dataset_id>/blocks/<uuid:block_id>/lift",
        DatasetBlockLiftApi.as_view(),
        name="dataset-block-lift",
    ),
]
