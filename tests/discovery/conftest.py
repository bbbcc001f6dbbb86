"""Beacon tests go through the disclosure control with its noise off (scale 0), so that
a rare or absent allele is always suppressed instead of, now and then, drawn above the
floor: the answers these tests check are then deterministic. The noise itself is the
disclosure app's to test (tests/disclosure)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_disclosure_noise(settings) -> None:
    settings.DISCLOSURE_NOISE_SCALE = 0
