from marketplace.models.audit import Anchor, AuditEntry, AuditHead
from marketplace.models.committees import (
    DacMembership,
    DataAccessCommittee,
    RequestMessage,
    Vote,
)
from marketplace.models.datasets import Dataset
from marketplace.models.notifications import Notification
from marketplace.models.requests import AccessRequest
from marketplace.models.users import Role, User
from marketplace.models.visas import Visa, VisaKey

__all__ = [
    "AccessRequest",
    "Anchor",
    "AuditEntry",
    "AuditHead",
    "DacMembership",
    "DataAccessCommittee",
    "Dataset",
    "Notification",
    "RequestMessage",
    "Role",
    "User",
    "Visa",
    "VisaKey",
    "Vote",
]
