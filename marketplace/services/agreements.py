"""Data access agreements: a donor publishes versioned texts; a researcher accepts the
exact version shown when requesting (issue 19 §3, as REMS' licences and DUOS' DAA)."""

from __future__ import annotations

from uuid import UUID

from django.db import transaction

from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from marketplace.models import DataAccessAgreement, Dataset, User
from marketplace.models.agreements import agreement_digest
from marketplace.services.audit import audit_append

MAX_AGREEMENT_CHARS = 50_000


class AgreementChanged(Conflict):
    """The researcher accepted a version that is no longer current (409): read the new
    one and accept it."""

    code = "agreement_changed"


def _donor_dataset(dataset_id: UUID | str, actor: User) -> Dataset:
    dataset = Dataset.objects.select_for_update().filter(pk=dataset_id).first()
    if dataset is None:
        raise NotFound("No such dataset.")
    if actor.pk != dataset.donor_id:
        raise PermissionDenied("Only the dataset's donor sets its data access agreement.")
    return dataset


def agreement_publish(
    *, dataset_id: UUID | str, actor: User, title: str, text: str
) -> DataAccessAgreement:
    """Make `text` the dataset's current agreement, as a new version (1, 2, ...); the same
    text again returns the current version unchanged. Requests already made keep the
    version they accepted. Raises ValidationError, PermissionDenied, NotFound."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    title = title.strip()
    if not title:
        raise ValidationError("Give the agreement a title.", fields={"title": ["Required."]})
    if not text:
        raise ValidationError(
            "Write the agreement's text, or remove the agreement instead.",
            fields={"text": ["Required."]},
        )
    if len(text) > MAX_AGREEMENT_CHARS:
        raise ValidationError(
            f"The agreement is too long: at most {MAX_AGREEMENT_CHARS:,} characters.",
            fields={"text": ["Too long."]},
        )
    digest = agreement_digest(text)
    with transaction.atomic():
        dataset = _donor_dataset(dataset_id, actor)
        current = dataset.agreements.filter(current=True).first()
        if current is not None and current.sha256 == digest and current.title == title:
            return current
        last = dataset.agreements.order_by("-version").values_list("version", flat=True).first()
        dataset.agreements.filter(current=True).update(current=False)
        agreement = DataAccessAgreement.objects.create(
            dataset=dataset,
            version=(last or 0) + 1,
            title=title,
            text=text,
            sha256=digest,
            created_by=actor,
        )
        audit_append(
            action="dataset.agreement_publish",
            actor=actor,
            object_type="dataset",
            object_id=dataset.pk,
            data={"version": agreement.version, "sha256": digest},
        )
    return agreement


def agreement_remove(*, dataset_id: UUID | str, actor: User) -> None:
    """Requests from now on need no agreement; the versions stay, with the requests that
    accepted them."""
    with transaction.atomic():
        dataset = _donor_dataset(dataset_id, actor)
        current = dataset.agreements.filter(current=True).first()
        if current is None:
            return
        dataset.agreements.filter(pk=current.pk).update(current=False)
        audit_append(
            action="dataset.agreement_remove",
            actor=actor,
            object_type="dataset",
            object_id=dataset.pk,
            data={"version": current.version},
        )


def agreement_accepted(*, dataset: Dataset, sha256: str | None) -> DataAccessAgreement | None:
    """The current agreement the researcher accepts by naming its SHA-256 (None when the
    dataset needs none). Raises ValidationError when one is needed and none was named,
    AgreementChanged (409) when the named text is not the current version."""
    current = dataset.agreements.filter(current=True).first()
    if current is None:
        return None
    if not sha256:
        raise ValidationError(
            f"This dataset needs its data access agreement accepted: read "
            f"“{current.title}” (version {current.version}) and accept it.",
            fields={"agreement_sha256": [f"Accept version {current.version}."]},
        )
    if sha256.strip().lower() != current.sha256:
        raise AgreementChanged(
            f"The data access agreement changed: version {current.version} is current. "
            "Read it and accept it again."
        )
    return current
