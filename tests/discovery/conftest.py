"""Beacon tests go through the disclosure control with its noise off (scale 0), so that
a rare or absent allele is always suppressed instead of, now and then, drawn above the
floor: the answers these tests check are then deterministic. The noise itself is the
disclosure app's to test (tests/disclosure)."""

from __future__ import annotations

import pytest

# The vault's fixtures (archive key, worker role, a donor's client) for the ingest tests.
from tests.genomics.conftest import archive_key, donor_client, worker  # noqa: F401


@pytest.fixture(autouse=True)
def _no_disclosure_noise(settings) -> None:
    settings.DISCLOSURE_NOISE_SCALE = 0
