"""What a donor's datasets earned, from the confirmed events of the chain itself (not
from request states), so the figures agree with the token balances."""

from __future__ import annotations

from dataclasses import dataclass

from ledger.models import ChainEvent
from marketplace.models import AccessRequest, Dataset


@dataclass(frozen=True)
class Earnings:
    paid: int
    released: int
    fee: int
    refunded: int

    @property
    def in_escrow(self) -> int:
        return self.paid - self.released - self.fee - self.refunded

    def as_dict(self) -> dict[str, str]:
        """Token base units as strings: amounts exceed what JSON numbers hold exactly."""
        return {
            "paid": str(self.paid),
            "released": str(self.released),
            "fee": str(self.fee),
            "refunded": str(self.refunded),
            "in_escrow": str(self.in_escrow),
        }


def dataset_earnings(*, dataset: Dataset) -> Earnings:
    """Paid into escrow, released to the donor (after the fee), the market's fee, and
    refunded to researchers, over every request on the dataset."""
    ids = AccessRequest.objects.filter(dataset=dataset).exclude(chain_request_id="")
    totals = {"Paid": 0, "Released": 0, "fee": 0, "Refunded": 0}
    for event in ChainEvent.objects.filter(
        request_id__in=ids.values("chain_request_id"), name__in=("Paid", "Released", "Refunded")
    ).only("name", "args"):
        totals[event.name] += int(event.args["amount"])
        if event.name == "Released":
            totals["fee"] += int(event.args["fee"])
    return Earnings(
        paid=totals["Paid"],
        released=totals["Released"],
        fee=totals["fee"],
        refunded=totals["Refunded"],
    )
