"""Ledger records. Wallet linking: a user proves control of an address with Sign-In with
Ethereum (EIP-4361) and the address becomes theirs to pay from and be paid to."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class WalletChallenge(models.Model):
    """A single-use SIWE nonce issued to one user for one address, valid for minutes.

    The exact message is kept so verification compares what was issued, field by field,
    not what the client chose to send back.
    """

    nonce = models.CharField(max_length=64, primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet_challenges"
    )
    address = models.CharField(max_length=42)
    domain = models.CharField(max_length=255)
    message = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return f"challenge {self.nonce[:8]} for {self.address}"


class WalletLink(models.Model):
    """The address linked to a user: one per user, and one user per address at a time."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallet_link"
    )
    # EIP-55 checksummed; unique so an address can never be linked to two accounts.
    address = models.CharField(max_length=42, unique=True)
    linked_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.address


class Deployment(models.Model):
    """Where a contract lives on a chain, and from which block its events matter."""

    chain_id = models.PositiveBigIntegerField()
    name = models.CharField(max_length=64)
    address = models.CharField(max_length=42)
    block_number = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66, blank=True)
    deployed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "name"], name="deployment_one_per_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.address} (chain {self.chain_id})"


class IndexerCheckpoint(models.Model):
    """The last block the indexer finished, with its hash to notice a reorg below it."""

    chain_id = models.PositiveBigIntegerField(primary_key=True)
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"chain {self.chain_id} at block {self.block_number}"


class IndexedBlock(models.Model):
    """Number, hash and parent hash of each processed block that held an event, and of each
    checkpoint: enough to find the common ancestor after a reorg (RELIABILITY.md 17)."""

    chain_id = models.PositiveBigIntegerField()
    number = models.BigIntegerField()
    hash = models.CharField(max_length=66)
    # Known for checkpoint blocks (fetched anyway); left blank for event blocks, whose logs
    # carry only their own hash, to spare one RPC call per block.
    parent_hash = models.CharField(max_length=66, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "number"], name="indexed_block_unique")
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.hash[:10]}"


class ChainEvent(models.Model):
    """One applied log. The unique key makes applying it twice impossible, whatever ranges
    overlap or however often the indexer restarts (RELIABILITY.md 18)."""

    chain_id = models.PositiveBigIntegerField()
    tx_hash = models.CharField(max_length=66)
    log_index = models.PositiveIntegerField()
    block_number = models.BigIntegerField()
    block_hash = models.CharField(max_length=66)
    tx_index = models.PositiveIntegerField()
    contract = models.CharField(max_length=42)
    name = models.CharField(max_length=32)
    # Decoded arguments: bytes as 0x-hex, integers as decimal strings (no float rounding).
    args = models.JSONField()
    request_id = models.CharField(max_length=66, blank=True, db_index=True)
    applied_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain_id", "tx_hash", "log_index"], name="chain_event_once"
            )
        ]
        indexes = [models.Index(fields=["chain_id", "block_number"])]
        ordering = ["block_number", "tx_index", "log_index"]

    def __str__(self) -> str:
        return f"{self.name} in {self.tx_hash[:10]}#{self.log_index}"


class OperatorNonce(models.Model):
    """The next nonce of the operator's address; allocated under a row lock so concurrent
    senders in several workers get contiguous, distinct nonces (RELIABILITY.md 20)."""

    chain_id = models.PositiveBigIntegerField()
    address = models.CharField(max_length=42)
    next_nonce = models.PositiveBigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["chain_id", "address"], name="operator_nonce_unique")
        ]

    def __str__(self) -> str:
        return f"{self.address} next {self.next_nonce}"


class OperatorTransaction(models.Model):
    """An operator transaction, stored signed before it is broadcast so a crash between
    the two can only lead to re-broadcasting the same bytes, never to a second action."""

    class Status(models.TextChoices):
        SIGNED = "signed", "Signed, not yet broadcast"
        PENDING = "pending", "Broadcast, waiting to be mined"
        MINED = "mined", "Mined"
        FAILED = "failed", "Reverted or abandoned"

    chain_id = models.PositiveBigIntegerField()
    action = models.CharField(max_length=32)
    # Idempotency: asking for the same (action, key) twice returns the first transaction.
    key = models.CharField(max_length=80)
    # The intent: the market function and its arguments (JSON; bytes as 0x-hex). `to` and
    # `data` are derived from it by the worker at every signing (ledger/services/sender.py).
    function = models.CharField(max_length=32, blank=True)
    args = models.JSONField(default=list)
    # Worker-only HMAC over the intent and nonce (ledger/integrity.py).
    mac = models.CharField(max_length=64, blank=True)
    to = models.CharField(max_length=42)
    data = models.TextField()
    sender = models.CharField(max_length=42)
    nonce = models.PositiveBigIntegerField()
    gas_limit = models.PositiveBigIntegerField()
    max_fee_per_gas = models.DecimalField(max_digits=78, decimal_places=0)
    max_priority_fee_per_gas = models.DecimalField(max_digits=78, decimal_places=0)
    raw_tx = models.TextField()
    tx_hash = models.CharField(max_length=66)
    # Every hash broadcast for this nonce (fee bumps replace the transaction).
    tx_hashes = models.JSONField(default=list)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.SIGNED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    receipt_block = models.BigIntegerField(null=True, blank=True)
    # The receipt's block hash: a reorg that removes it is noticed with one read per poll.
    receipt_block_hash = models.CharField(max_length=66, blank=True)
    receipt_status = models.PositiveSmallIntegerField(null=True, blank=True)
    gas_used = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    broadcast_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["action", "key"], name="operator_tx_once"),
            models.UniqueConstraint(
                fields=["chain_id", "sender", "nonce"], name="operator_tx_nonce_unique"
            ),
        ]
        indexes = [models.Index(fields=["status", "broadcast_at"])]

    def __str__(self) -> str:
        return f"{self.action}({self.key}) nonce {self.nonce} {self.status}"
