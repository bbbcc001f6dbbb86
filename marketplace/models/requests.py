"""Access requests and their lifecycle states (DESIGN.md "Access request lifecycle")."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from marketplace.models.lifecycle import (
    LEADS_TO_ACCESS,
    IllegalTransition,
    Move,
    State,
    can,
    check_step,
    state_in_words,
    target_of,
)


class AccessRequest(models.Model):
    # The states and the moves between them are declared once, in `lifecycle`.
    State = State

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    dataset = models.ForeignKey(
        "marketplace.Dataset", on_delete=models.PROTECT, related_name="requests"
    )
    researcher = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="access_requests"
    )
    # The region tier bought (None: the whole dataset); its grants reach only its objects.
    tier = models.ForeignKey(
        "marketplace.DatasetTier",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
    )
    purpose_codes = models.JSONField(default=list)
    statement = models.TextField(max_length=5000)
    state = models.CharField(max_length=16, choices=State.choices, default=State.SUBMITTED)
    # The consent check at submission: {"outcome", "fits" (allowed), "reasons",
    # "committee_checks", "rules", "matcher_version"} (marketplace.consent.Match.as_json).
    duo_match = models.JSONField(default=dict)
    # Which consent matcher made that check (marketplace.consent.MATCHER_VERSION: its rules
    # and the DUO and MONDO releases it read), so a decision can be traced to its rules.
    consent_matcher_version = models.CharField(max_length=100, blank=True)
    # The price when the request was made: later price changes do not apply to it.
    amount = models.DecimalField(max_digits=78, decimal_places=0)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reviewed_requests",
    )
    decision_reason = models.TextField(max_length=2000, blank=True)
    # The agreement version the researcher accepted when requesting (none when the dataset
    # asked for none); its sha256 is in the submit audit entry and the voucher's terms.
    agreement = models.ForeignKey(
        "marketplace.DataAccessAgreement",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="requests",
    )
    # Which review the request is in: 1, then one more each time it is resubmitted after a
    # return (committee votes count for the current round only).
    review_round = models.PositiveSmallIntegerField(default=1)
    # On chain the request is keccak256 of its UUID's bytes (AccessMarket's bytes32 id).
    chain_request_id = models.CharField(max_length=66, blank=True, db_index=True)
    # The voucher, once the worker has signed it (approved -> payable).
    buyer = models.CharField(max_length=42, blank=True)
    payee = models.CharField(max_length=42, blank=True)
    voucher_valid_until = models.BigIntegerField(null=True, blank=True)
    voucher_refund_after = models.BigIntegerField(null=True, blank=True)
    voucher_signature = models.CharField(max_length=132, blank=True)
    voucher_chain_id = models.BigIntegerField(null=True, blank=True)
    voucher_market = models.CharField(max_length=42, blank=True)
    # keccak256 of what was bought (the listing's scope, the agreement's version), signed
    # into the voucher and echoed by the `Paid` event.
    voucher_terms = models.CharField(max_length=66, blank=True)
    # Worker-only HMAC over the signed voucher (ledger.integrity): a row the web tier could
    # write is never taken as proof of what the worker signed.
    voucher_mac = models.CharField(max_length=64, blank=True)
    # Why the worker could not sign yet (e.g. no linked wallet), shown to the people concerned.
    voucher_error = models.CharField(max_length=300, blank=True)
    paid_tx = models.CharField(max_length=66, blank=True)
    # The operator's `deliver` and `release` transactions, kept for the request page.
    deliver_tx = models.CharField(max_length=66, blank=True)
    release_tx = models.CharField(max_length=66, blank=True)
    # Set when a payment does not match its voucher: never granted, an admin decides.
    flagged = models.CharField(max_length=300, blank=True)
    granted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    # A renewal is its own request (its own review, price, voucher and escrow) of a live
    # grant; once granted it runs on from the end of the grant it renews.
    renews = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="renewals"
    )
    # When the researcher was told that this grant ends soon (once per grant).
    renewal_reminded_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["state", "created_at"])]
        constraints = [
            # Issue 16 §7: one open request per researcher, dataset and scope (the whole
            # dataset: tier NULL, or one region tier); the service refuses a second with a
            # link to the first, and this index holds under any race (NULLs not distinct,
            # PostgreSQL 15+; elsewhere the service's check alone).
            models.UniqueConstraint(
                fields=["researcher", "dataset", "tier"],
                nulls_distinct=False,
                # A renewal of a live grant is its own kind (issue 16 §7, 19 §4): one at a
                # time per grant, held by `request_renew`.
                condition=models.Q(state__in=LEADS_TO_ACCESS, renews__isnull=True),
                name="one_open_request_per_researcher_dataset",
            )
        ]

    def __str__(self) -> str:
        return f"request {self.pk} ({self.state})"

    def save(self, *args: object, **kwargs: object) -> None:
        """Refuses a change of state that the lifecycle table does not allow."""
        before = getattr(self, "_loaded_state", "")
        if before:
            check_step(before, self.state)
        super().save(*args, **kwargs)  # type: ignore[arg-type]
        self._loaded_state = self.state

    @classmethod
    def from_db(cls, db: object, field_names: object, values: object) -> AccessRequest:
        instance = super().from_db(db, field_names, values)  # type: ignore[arg-type]
        instance._loaded_state = str(instance.__dict__.get("state", ""))
        return instance

    def can(self, move: Move) -> bool:
        return can(self.state, move)

    def advance(self, move: Move) -> None:
        """Make `move` (not yet saved); IllegalTransition (409) when the state forbids it."""
        if not can(self.state, move):
            raise IllegalTransition(cannot_now(self, str(_PAST.get(move, move))))
        self.state = target_of(move)


def cannot_now(request: AccessRequest, past: str) -> str:
    """A refusal in plain words that says what to do next (issue 16 §10): "This request is
    awaiting payment, so it cannot be withdrawn now. Reload its page to see what can."."""
    return (
        f"This request is {state_in_words(request.state)}, so it cannot be {past} now. "
        "Reload its page to see what can be done."
    )


_PAST = {
    Move.APPROVE: "approved",
    Move.REJECT: "rejected",
    Move.WITHDRAW: "withdrawn",
    Move.CLOSE: "closed",
    Move.REVOKE: "revoked",
    Move.RETURN: "returned",
    Move.RESUBMIT: "resubmitted",
}
