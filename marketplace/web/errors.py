"""Turning a service's domain error into form errors shown in place."""

from __future__ import annotations

from django import forms

from core.errors import DomainError

# Service field names that a web form calls differently.
FIELD_ALIASES = {"files": "file_ids", "duo_codes": "permission", "purpose_codes": "permission"}


def form_add_domain_error(form: forms.Form, error: DomainError) -> None:
    """Each field error under its field when the form has it; the message on top."""
    fields = getattr(error, "fields", {}) or {}
    placed = False
    for name, messages in fields.items():
        target = FIELD_ALIASES.get(name, name)
        if target in form.fields:
            for message in messages:
                form.add_error(target, message)
            placed = True
    if not placed or error.message not in str(fields):
        form.add_error(None, error.message)
