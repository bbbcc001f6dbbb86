"""Released discovery answers and the privacy budget's ledger.

Every row hangs off its dataset (on_delete=CASCADE): a donor's erasure of the dataset
takes the answers derived from it along.
"""

from __future__ import annotations

from django.db import models


class ReleasedAnswer(models.Model):
    """The one answer a dataset gives to one normalised query, drawn once and served again
    to everyone who asks it, so repeated queries cannot average the noise away.

    `truth_sha256` fingerprints the true tallies the answer was drawn from: when the
    dataset's index changes (a file added), the next query draws afresh once.
    """

    dataset = models.ForeignKey(
        "marketplace.Dataset", on_delete=models.CASCADE, related_name="released_answers"
    )
    query_sha256 = models.CharField(max_length=64)
    query_key = models.TextField()
    granularity = models.CharField(max_length=16)
    truth_sha256 = models.CharField(max_length=64)
    rare = models.BooleanField()
    suppressed = models.BooleanField()
    exists = models.BooleanField(null=True)
    count = models.BigIntegerField(null=True)
    exact = models.BooleanField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "query_sha256"], name="disclosure_one_answer_per_query"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.query_key}"


class BudgetAccount(models.Model):
    """One budget holder on one dataset ("user:<id>" or "net:<cidr>"): the row that is
    locked while a charge is decided, so concurrent queries cannot overspend."""

    holder = models.CharField(max_length=80)
    dataset = models.ForeignKey(
        "marketplace.Dataset", on_delete=models.CASCADE, related_name="budget_accounts"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["holder", "dataset"], name="disclosure_one_account")
        ]

    def __str__(self) -> str:
        return f"{self.holder} on {self.dataset_id}"


class BudgetCharge(models.Model):
    """One distinct rare-allele query charged to one holder; the window counts these."""

    account = models.ForeignKey(BudgetAccount, on_delete=models.CASCADE, related_name="charges")
    query_sha256 = models.CharField(max_length=64)
    charged_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [models.Index(fields=["account", "charged_at"])]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "query_sha256"], name="disclosure_one_charge_per_query"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.query_sha256[:12]} at {self.charged_at}"
