"""Web UI routes (server-rendered pages, htmx for partial updates)."""

from django.urls import path
from django.views.generic import TemplateView

from marketplace.web import (
    catalogue,
    files,
    inbox,
    listings,
    oversight,
    profile,
    requests,
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
    path("accounts/second-factor/", twofactor.second_factor, name="second-factor"),
    path("profile/", profile.profile, name="profile"),
    path("inbox/", inbox.inbox, name="inbox"),
    path("inbox/read", inbox.inbox_read, name="inbox-read"),
    path("datasets/", catalogue.catalogue, name="catalogue"),
    path("datasets/new/", listings.listing_create, name="listing-create"),
    path("datasets/<uuid:dataset_id>/", catalogue.dataset_page, name="dataset"),
    path("datasets/<uuid:dataset_id>/edit/", listings.listing_edit, name="listing-edit"),
    path(
        "datasets/<uuid:dataset_id>/withdraw/", listings.listing_withdraw, name="listing-withdraw"
    ),
    path("datasets/<uuid:dataset_id>/request/", requests.request_create, name="request-create"),
    path("datasets/<uuid:dataset_id>/tiers/new/", tiers.tier_create_view, name="tier-create"),
    path("datasets/<uuid:dataset_id>/tiers/<uuid:tier_id>/", tiers.tier_page, name="dataset_tier"),
    path("dashboard/", listings.dashboard, name="dashboard"),
    path("files/", files.files_page, name="files"),
    path("files/table", files.files_table, name="files-table"),
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
    path("requests/<uuid:request_id>/close", requests.request_close_view, name="request-close"),
    path("review/", requests.review_queue, name="review"),
    path("audit/", oversight.audit_log, name="audit"),
    path("chain/", oversight.chain_page, name="chain"),
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
