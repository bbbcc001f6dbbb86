"""Marketplace Celery tasks: ids in, services do the work."""

from __future__ import annotations

import logging

from celery import shared_task

from core.errors import ServiceUnavailable
from ledger import chain
from ledger.tasks import ChainTask
from marketplace.services.anchoring import anchors_create
from marketplace.services.attachments import attachment_header_for
from marketplace.services.notifications import notify_wallet_wanted
from marketplace.services.renewals import requests_remind_expiring
from marketplace.services.settlement import (
    request_cancel_voucher,
    request_grant,
    request_refund,
    request_release,
    request_sign_voucher,
    requests_lapse_and_expire,
)

logger = logging.getLogger(__name__)


@shared_task(name="marketplace.tasks.sign_voucher", ignore_result=True)
def sign_voucher(request_id: str) -> None:
    signed = request_sign_voucher(request_id=request_id)
    # A voucher held up by a missing wallet: tell whoever must link one (once).
    notify_wallet_wanted(request=signed)


@shared_task(name="marketplace.tasks.grant_access", ignore_result=True, base=ChainTask)
def grant_access(request_id: str) -> None:
    request_grant(request_id=request_id)


@shared_task(name="marketplace.tasks.release_access", ignore_result=True, base=ChainTask)
def release_access(request_id: str) -> None:
    request_release(request_id=request_id)


@shared_task(name="marketplace.tasks.refund_access", ignore_result=True, base=ChainTask)
def refund_access(request_id: str) -> None:
    request_refund(request_id=request_id)


@shared_task(name="marketplace.tasks.cancel_voucher", ignore_result=True, base=ChainTask)
def cancel_voucher(request_id: str) -> None:
    request_cancel_voucher(request_id=request_id)


@shared_task(name="marketplace.tasks.lapse_and_expire", ignore_result=True)
def lapse_and_expire() -> None:
    requests_lapse_and_expire()


@shared_task(name="marketplace.tasks.attachment_header", ignore_result=True)
def attachment_header(file_id: str, public_key_hex: str) -> None:
    attachment_header_for(file_id=file_id, public_key_hex=public_key_hex)


@shared_task(name="marketplace.tasks.remind_renewals", ignore_result=True)
def remind_renewals() -> None:
    requests_remind_expiring()


@shared_task(name="marketplace.tasks.refresh_visas", ignore_result=True)
def refresh_visas() -> None:
    from marketplace.services.visas import visas_refresh

    visas_refresh()


@shared_task(name="marketplace.tasks.reconcile", ignore_result=True)
def reconcile() -> None:
    from django.conf import settings

    from marketplace.services.reconcile import work_reconcile

    work_reconcile(waiting_for_s=settings.RECONCILE_AFTER_S)


@shared_task(name="marketplace.tasks.anchor", ignore_result=True)
def anchor() -> None:
    try:
        anchors_create()
    except ServiceUnavailable:  # contracts not deployed yet
        return
    except chain.UNREACHABLE as exc:  # the anchors wait in the database for the next run
        logger.warning("chain node unreachable, anchoring waits: %s", type(exc).__name__)


@shared_task(name="marketplace.tasks.erase_donor_data", ignore_result=True)
def erase_donor_data(erasure_id: str) -> None:
    from marketplace.services.erasure import erasure_run

    erasure_run(erasure_id=erasure_id)


@shared_task(name="marketplace.tasks.build_tier", ignore_result=True)
def build_tier(tier_id: str) -> None:
    from marketplace.services.tiers import tier_build

    tier_build(tier_id=tier_id)
