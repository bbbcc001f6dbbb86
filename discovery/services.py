"""Discovery writes: the donor's choice of what the Beacon may say about a dataset."""

from __future__ import annotations

from django.db import transaction

from core.errors import PermissionDenied
from discovery.models import BeaconPolicy
from marketplace.models import Dataset, Role, User
from marketplace.services.audit import audit_append
from marketplace.web.results_cache import catalogue_changed


def beacon_policy_set(*, dataset: Dataset, actor: User, granularity: str) -> BeaconPolicy:
    """Set the Beacon granularity of a dataset ("boolean" or "count"; never "record").
    Only its donor (or an admin) may. Raises PermissionDenied; one audit entry."""
    if actor.pk != dataset.donor_id and actor.role != Role.ADMIN:
        raise PermissionDenied("Only the dataset's donor chooses what the Beacon may say.")
    with transaction.atomic():
        policy, _ = BeaconPolicy.objects.update_or_create(
            dataset=dataset, defaults={"granularity": BeaconPolicy.Granularity(granularity)}
        )
        audit_append(
            action="dataset.beacon_policy",
            actor=actor,
            object_type="dataset",
            object_id=dataset.pk,
            data={"granularity": policy.granularity},
        )
        transaction.on_commit(catalogue_changed)  # the Beacon's cached dataset list
    return policy


def beacon_granularity(*, dataset: Dataset) -> str:
    """The dataset's Beacon granularity (boolean when the donor chose nothing)."""
    policy = BeaconPolicy.objects.filter(dataset=dataset).first()
    return policy.granularity if policy else BeaconPolicy.Granularity.BOOLEAN
