"""Reads of data access agreements."""

from __future__ import annotations

from marketplace.models import DataAccessAgreement, Dataset


def agreement_current(*, dataset: Dataset) -> DataAccessAgreement | None:
    """The version a request must accept now, or None when the dataset needs none."""
    return dataset.agreements.filter(current=True).first()
