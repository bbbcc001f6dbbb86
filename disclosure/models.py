"""Released discovery answers and the privacy budget's ledger.

Every answer hangs off its dataset (on_delete=CASCADE): a donor's erasure of the dataset
takes the answers derived from it along. The budget's ledger is about callers, not about the
donor's data: it names datasets by id and is kept.
"""

from __future__ import annotations

from django.db import models


class ReleasedAnswer(models.Model):
    """The one answer a dataset gives to one normalised query, drawn once and served again
    to everyone who asks it, so repeated queries cannot average the noise away.

    `truth_sha256` fingerprints the true tallies the answer was drawn from: when the
    dataset's index changes (a file added), the next query draws afresh once.
    """

    # No foreign-key constraint in the database (Django still cascades a deleted dataset's
    # answers): a first query over 1,000 datasets writes 1,000 answers, and the constraint's
    # check locked each of the 1,000 dataset rows (a third of the insert's time,
    # bench/beacon.py). The ids come from the Beacon's own list of datasets.
    dataset = models.ForeignKey(
        "marketplace.Dataset",
        on_delete=models.CASCADE,
        related_name="released_answers",
        db_constraint=False,
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
            # Query first: a query's answers for all datasets are one range of the index.
            models.UniqueConstraint(
                fields=["query_sha256", "dataset"], name="disclosure_one_answer_per_query"
            )
        ]

    def __str__(self) -> str:
        return f"{self.dataset_id} {self.query_key}"


class BudgetAccount(models.Model):
    """One budget holder ("user:<id>" or "net:<cidr>"): the row that is locked while the
    holder's charges for one query are decided, so that concurrent queries cannot
    overspend. Its budget is kept per dataset in its charges."""

    holder = models.CharField(max_length=80, unique=True)

    def __str__(self) -> str:
        return self.holder


class BudgetCharge(models.Model):
    """One distinct rare-allele query charged to one holder, with the datasets it was
    charged on (their ids as text, a JSON list): one row per query and holder, however many
    datasets (a Beacon query over 1,000 datasets writes one row, not 1,000). A dataset's
    spending in the window is the number of this holder's charges since the window began
    that name it. A later charge of the same query (on datasets not charged before, e.g.
    refused then) is a row of its own."""

    account = models.ForeignKey(BudgetAccount, on_delete=models.CASCADE, related_name="charges")
    query_sha256 = models.CharField(max_length=64)
    charged_at = models.DateTimeField()
    datasets = models.JSONField()

    class Meta:
        indexes = [
            models.Index(fields=["account", "charged_at"], name="disclosure_charge_window"),
            models.Index(fields=["account", "query_sha256"], name="disclosure_charge_query"),
        ]

    def __str__(self) -> str:
        return f"{self.account_id} {self.query_sha256[:12]} at {self.charged_at}"
