from marketplace.models.agreements import DataAccessAgreement, DatasetBlock
from marketplace.models.attachments import RequestAttachment
from marketplace.models.audit import Anchor, AuditEntry, AuditHead, AuditPersonal
from marketplace.models.committees import (
    DacMembership,
    DataAccessCommittee,
    RequestMessage,
    Vote,
)
from marketplace.models.datasets import Dataset
from marketplace.models.notifications import Notification
from marketplace.models.recovery import RecoveryCode, RecoveryCodeDevice
from marketplace.models.requests import AccessRequest
from marketplace.models.rights import Erasure, ErasureObject
from marketplace.models.tiers import DatasetTier
from marketplace.models.users import Role, User
from marketplace.models.visas import Visa, VisaKey

__all__ = [
    "AccessRequest",
    "Anchor",
    "AuditEntry",
    "AuditHead",
    "AuditPersonal",
    "DacMembership",
    "DataAccessAgreement",
    "DataAccessCommittee",
    "Dataset",
    "DatasetBlock",
    "DatasetTier",
    "Erasure",
    "ErasureObject",
    "Notification",
    "RecoveryCode",
    "RecoveryCodeDevice",
    "RequestAttachment",
    "RequestMessage",
    "Role",
    "User",
    "Visa",
    "VisaKey",
    "Vote",
]
