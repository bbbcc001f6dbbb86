from marketplace.models.audit import Anchor, AuditEntry, AuditHead
from marketplace.models.datasets import Dataset
from marketplace.models.notifications import Notification
from marketplace.models.requests import AccessRequest
from marketplace.models.tiers import DatasetTier
from marketplace.models.users import Role, User
from marketplace.models.visas import Visa, VisaKey

__all__ = [
    "AccessRequest",
    "Anchor",
    "AuditEntry",
    "AuditHead",
    "Dataset",
    "DatasetTier",
    "Notification",
    "Role",
    "User",
    "Visa",
    "VisaKey",
]
