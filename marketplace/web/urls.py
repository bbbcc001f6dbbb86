"""Web UI routes (server-rendered pages, htmx for partial updates)."""

from django.urls import path
from django.views.generic import TemplateView

from marketplace.web import (
    agreements,
    catalogue,
    committees,
    files,
    inbox,
    listings,
    moderation,
    oversight,
    password_reset,
    profile,
    recovery,
    requests,
    reviews,
    rights,
    status,
    tiers,
    twofactor,
    views,
)

app_name = "web"

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", views.LoginView.as_view(), name="login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="logout"),
    path("accounts/register/", views.register, name="register"),
    path(
        "accounts/password-reset/",
        password_reset.PasswordResetView.as_view(),
        name="password-reset",
    ),
    path(
        "accounts/password-reset/sent/",
        password_reset.PasswordResetDoneView.as_view(),
        name="password-reset-done",
    ),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        password_reset.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "accounts/password-reset/done/",
        password_reset.PasswordResetCompleteView.as_view(),
        name="password-reset-complete",
    ),
    path("accounts/recovery-codes/", recovery.recovery_codes, name="recovery-codes"),
    path("accounts/second-factor/", twofactor.second_factor, name="second-factor"),
    path("profile/", profile.profile, name="profile"),
    path("profile/identity", profile.profile_identity, name="profile-identity"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/read", inbox.inbox_read, name="inbox-read"),
    path("datasets/", catalogue.catalogue, name="catalogue"),
    path("datasets/new/", listings.listing_create, name="listing-create"),
    path("datasets/<uuid:dataset_id>/", catalogue.dataset_page, name="dataset"),
    path("datasets/<uuid:dataset_id>/edit/", listings.listing_edit, name="listing-edit"),
    path(
        "datasets/<uuid:dataset_id>/withdraw/", listings.listing_withdraw, name="listing-withdraw"
    ),
    path(
        "datasets/<uuid:dataset_id>/delist",
        moderation.dataset_delist_view,
        name="dataset-delist",
    ),
    path("datasets/<uuid:dataset_id>/request/", requests.request_create, name="request-create"),
    path("datasets/<uuid:dataset_id>/request/fit", requests.request_fit, name="request-fit"),
    path(
        "datasets/<uuid:dataset_id>/agreement/",
        agreements.dataset_agreement,
        name="dataset-agreement",
    ),
    path(
        "datasets/<uuid:dataset_id>/blocks/", agreements.dataset_blocklist, name="dataset-blocklist"
    ),
    path(
        "datasets/<uuid:dataset_id>/blocks/<uuid:block_id>/lift",
        agreements.dataset_block_lift,
        name="dataset-block-lift",
    ),
    path("datasets/<uuid:dataset_id>/tiers/new/", tiers.tier_create_view, name="tier-create"),
    path("datasets/<uuid:dataset_id>/tiers/<uuid:tier_id>/", tiers.tier_page, name="dataset_tier"),
    path("dashboard/", listings.dashboard, name="dashboard"),
    path("files/", files.files_page, name="files"),
    path("files/table", files.files_table, name="files-table"),
    path("files/<uuid:file_id>/delete", files.file_delete_view, name="file-delete"),
    path("files/<uuid:file_id>/cancel", files.upload_cancel_view, name="upload-cancel"),
    path("files/<uuid:file_id>/recompress", files.file_recompress_view, name="file-recompress"),
    path("requests/", requests.request_index, name="requests"),
    path("requests/<uuid:request_id>/", requests.request_page, name="request"),
    path("requests/<uuid:request_id>/status", requests.request_status, name="request-status"),
    path(
        "requests/<uuid:request_id>/approve",
        requests.request_decide,
        {"decision": "approve"},
        name="request-approve",
    ),
    path(
        "requests/<uuid:request_id>/reject",
        requests.request_decide,
        {"decision": "reject"},
        name="request-reject",
    ),
    path(
        "requests/<uuid:request_id>/withdraw",
        requests.request_withdraw_view,
        name="request-withdraw",
    ),
    path("requests/<uuid:request_id>/revoke", requests.request_revoke_view, name="request-revoke"),
    path("requests/<uuid:request_id>/renew", requests.request_renew_view, name="request-renew"),
    path(
        "requests/<uuid:request_id>/attachments",
        requests.request_attach_view,
        name="request-attach",
    ),
    path(
        "requests/<uuid:request_id>/attachments/<uuid:attachment_id>",
        requests.request_attachment_view,
        name="request-attachment",
    ),
    path("requests/<uuid:request_id>/close", requests.request_close_view, name="request-close"),
    path("my-data/", rights.access_history, name="access-history"),
    path("my-data/erase/", rights.erase, name="erase"),
    path("review/", requests.review_queue, name="review"),
    # Committees (issue 19 §1, §2, §6)
    path("requests/<uuid:request_id>/vote", reviews.request_vote_view, name="request-vote"),
    path("requests/<uuid:request_id>/return", reviews.request_return_view, name="request-return"),
    path(
        "requests/<uuid:request_id>/messages",
        reviews.request_message_view,
        name="request-message",
    ),
    path("requests/<uuid:request_id>/edit/", reviews.request_edit_view, name="request-edit"),
    path("committees/", committees.dac_index, name="dacs"),
    path("committees/<uuid:dac_id>/", committees.dac_page, name="dac"),
    path("committees/<uuid:dac_id>/members", committees.dac_member_add, name="dac-member-add"),
    path(
        "committees/<uuid:dac_id>/members/<uuid:user_id>/remove",
        committees.dac_member_remove_view,
        name="dac-member-remove",
    ),
    path("audit/", oversight.audit_log, name="audit"),
    path("chain/", oversight.chain_page, name="chain"),
    path("status/", status.status_page, name="status"),
    path(
        "how-to/keys/",
        TemplateView.as_view(template_name="marketplace/howto/keys.html"),
        name="howto-keys",
    ),
    path(
        "how-to/decrypt/",
        TemplateView.as_view(template_name="marketplace/howto/decrypt.html"),
        name="howto-decrypt",
    ),
]
