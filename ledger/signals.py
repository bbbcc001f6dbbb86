"""What the ledger tells other apps. Receivers run inside the indexer's transaction, so
their database effects commit together with the event and the checkpoint, exactly once;
they enqueue any Celery work with `transaction.on_commit`."""

from django.dispatch import Signal

# sender=ChainEvent class, event=ChainEvent: a confirmed event was applied.
chain_event_applied = Signal()
# sender=ChainEvent class, event=ChainEvent: a reorg orphaned an applied event; undo it.
chain_event_reverted = Signal()
# sender=OperatorTransaction class, transaction=OperatorTransaction: mined (or reverted).
operator_transaction_mined = Signal()
