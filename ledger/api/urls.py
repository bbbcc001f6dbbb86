"""Ledger API routes, mounted under /api/v1/ (API.md)."""

from django.urls import path

from ledger.api.chain import ChainApi
from ledger.api.wallets import WalletChallengeApi, WalletLinkApi

app_name = "ledger_api"

urlpatterns = [
    path("chain", ChainApi.as_view(), name="chain"),
    path("me/wallet/challenge", WalletChallengeApi.as_view(), name="wallet-challenge"),
    path("me/wallet", WalletLinkApi.as_view(), name="wallet"),
]
