"""Security headers every page carries, and templates that keep the CSP honest."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db
PROJECT = Path(__file__).resolve().parents[2]


def test_pages_carry_a_content_security_policy_without_inline_script() -> None:
    response = Client().get("/")
    policy = response["Content-Security-Policy"]
    directives = dict(
        (part.split()[0], part.split()[1:]) for part in policy.split(";") if part.strip()
    )
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_no_template_has_an_inline_script() -> None:
    """Every <script> loads a file or only carries JSON data (json_script)."""
    offenders = []
    for template in PROJECT.glob("*/templates/**/*.html"):
        for tag in re.findall(r"<script\b[^>]*>", template.read_text()):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{template.relative_to(PROJECT)}: {tag}")
        if re.search(r"\son[a-z]+=", template.read_text()):
            offenders.append(f"{template.relative_to(PROJECT)}: an on* handler attribute")
    assert not offenders, offenders
