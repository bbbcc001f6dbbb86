"""The marketplace's answers to ledger events (connected in MarketplaceConfig.ready)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import receiver

from genomics.models import GenomicFile, Recompression
from genomics.signals import file_recompress_failed, file_recompressed
from ledger.models import ChainEvent, OperatorTransaction
from ledger.signals import chain_event_applied, chain_event_reverted, operator_transaction_mined
from marketplace.models import Dataset, User
from marketplace.services.anchoring import anchor_confirm, anchor_unconfirm
from marketplace.services.files import file_recompress_failed_record, file_recompressed_record
from marketplace.services.settlement import (
    request_after_operator_transaction,
    request_apply_payment,
    request_apply_settlement,
    request_revert_event,
)
from marketplace.web.results_cache import catalogue_changed


@receiver(chain_event_applied, dispatch_uid="marketplace.chain_event_applied")
def on_chain_event(sender: object, event: ChainEvent, **_: object) -> None:
    if event.name == "Paid":
        request_apply_payment(event=event)
    elif event.name in ("Released", "Refunded", "Delivered", "Cancelled"):
        request_apply_settlement(event=event)
    elif event.name == "Anchored":
        anchor_confirm(event=event)


@receiver(operator_transaction_mined, dispatch_uid="marketplace.operator_transaction_mined")
def on_operator_transaction(sender: object, transaction: OperatorTransaction, **_: object) -> None:
    request_after_operator_transaction(tx=transaction)


@receiver(chain_event_reverted, dispatch_uid="marketplace.chain_event_reverted")
def on_chain_event_reverted(sender: object, event: ChainEvent, **_: object) -> None:
    if event.name in ("Paid", "Released", "Refunded"):
        request_revert_event(event=event)
    elif event.name == "Anchored":
        anchor_unconfirm(event=event)


@receiver(file_recompressed, dispatch_uid="marketplace.file_recompressed")
def on_file_recompressed(
    sender: object, recompression: Recompression, file: GenomicFile, **_: object
) -> None:
    file_recompressed_record(recompression=recompression, file=file)


@receiver(file_recompress_failed, dispatch_uid="marketplace.file_recompress_failed")
def on_file_recompress_failed(
    sender: object, recompression: Recompression, file: GenomicFile, **_: object
) -> None:
    file_recompress_failed_record(recompression=recompression, file=file)


@receiver(post_save, sender=Dataset, dispatch_uid="marketplace.catalogue_saved")
@receiver(post_delete, sender=Dataset, dispatch_uid="marketplace.catalogue_deleted")
@receiver(m2m_changed, sender=Dataset.files.through, dispatch_uid="marketplace.catalogue_files")
def on_listing_changed(sender: object, **_: object) -> None:
    """A listing changed: the catalogue's cached result lists are out of date. Now, and
    again at commit: a page built between the two from the old rows is not kept."""
    catalogue_changed()
    transaction.on_commit(catalogue_changed)


@receiver(post_save, sender=User, dispatch_uid="marketplace.staff_join_default_dac")
def on_user_saved(
    sender: object, instance: User, created: bool, update_fields: object = None, **_: object
) -> None:
    """A new reviewer or admin, or an account made one, sits on the platform's committee
    (issue 19 §1); later saves (a login's timestamp) leave memberships alone."""
    if created or (update_fields is not None and "role" in update_fields):  # type: ignore[operator]
        from marketplace.services.committees import staff_join_default_dac

        staff_join_default_dac(user=instance)
