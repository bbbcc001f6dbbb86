"""Datasets: a donor's ready files, listed with consent terms (DUO) and a price."""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import models

from marketplace.consent.codes import ConsentCode
from marketplace.consent.index import consent_tokens


class Dataset(models.Model):
    class Review(models.TextChoices):
        AUTO = "auto", "Automatic when the purpose fits the consent"
        COMMITTEE = "committee", "Data access committee"

    class State(models.TextChoices):
        LISTED = "listed", "Listed"
        WITHDRAWN = "withdrawn", "Consent withdrawn"
        # An admin took it out of the catalogue (issue 16 §6); the consent stands, so
        # requests already paid are still delivered under the settlement rules.
        DELISTED = "delisted", "Delisted by an admin"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    donor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="datasets"
    )
    title = models.CharField(max_length=200)
    description = models.TextField(max_length=10_000, blank=True)
    files = models.ManyToManyField("genomics.GenomicFile", related_name="datasets")
    # Token base units (wei-like): integers of any size, never floats.
    price = models.DecimalField(max_digits=78, decimal_places=0)
    access_days = models.PositiveIntegerField()
    # False: sold by region only (README "Selling regions"): a request must pick a tier.
    whole_for_sale = models.BooleanField(default=True)
    review = models.CharField(max_length=16, choices=Review.choices, default=Review.COMMITTEE)
    # The committee that sees and decides this dataset's requests (issue 19 §1), also when
    # review is automatic: it handles what the consent matcher sends to review.
    dac = models.ForeignKey(
        "marketplace.DataAccessCommittee", on_delete=models.PROTECT, related_name="datasets"
    )
    # Normalised consent: [{"code": "DUO:...", "value": ""}], sorted.
    duo_codes = models.JSONField(default=list)
    state = models.CharField(max_length=16, choices=State.choices, default=State.LISTED)
    # Space-separated tokens for portable filtering (JSON containment is not portable).
    duo_index = models.CharField(max_length=1000, blank=True, db_index=True)
    # The purposes that fit and what they must commit to, precomputed from duo_codes and
    # access_days on every save (marketplace.consent.index; GIN-indexed on PostgreSQL).
    duo_fits = models.TextField(blank=True, default="")
    duo_requires = models.TextField(blank=True, default="")
    format_index = models.CharField(max_length=200, blank=True)
    reference_index = models.CharField(max_length=200, blank=True)
    metadata = models.JSONField(default=dict)
    # SHA-256 of the public record's canonical JSON: what anchoring puts on chain.
    record_hash = models.CharField(max_length=64)
    anchor_tx = models.CharField(max_length=66, blank=True)
    anchored_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    withdrawn_at = models.DateTimeField(null=True, blank=True)
    delisted_at = models.DateTimeField(null=True, blank=True)
    delist_reason = models.TextField(max_length=2000, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "price"])]
        constraints = [
            models.CheckConstraint(condition=models.Q(price__gte=0), name="dataset_price_positive"),
        ]

    def __str__(self) -> str:
        return self.title

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Keep the consent filter's tokens in step with the consent, whoever saves: the
        listing services, the admin, fixtures."""
        self.refresh_consent_index()
        if self.dac_id is None:  # listed without a choice: the platform's committee
            from marketplace.selectors.committees import dac_default

            self.dac = dac_default()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"duo_codes", "access_days"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "duo_fits", "duo_requires"}
        super().save(*args, **kwargs)

    @property
    def consent_stands(self) -> bool:
        """Whether paid requests may still be delivered: listed, or delisted by an admin
        (moderation does not take the donor's consent back; a withdrawal does)."""
        return self.state in (self.State.LISTED, self.State.DELISTED)

    def refresh_consent_index(self) -> None:
        fits, requires = consent_tokens(
            [ConsentCode(c["code"], c.get("value", "")) for c in self.duo_codes],
            access_days=self.access_days,
        )
        self.duo_fits = " " + " ".join(fits) + " " if fits else ""
        self.duo_requires = " " + " ".join(requires) + " " if requires else ""
