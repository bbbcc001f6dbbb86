from marketplace.models.audit import AuditEntry, AuditHead
from marketplace.models.datasets import Dataset
from marketplace.models.users import Role, User

__all__ = ["AuditEntry", "AuditHead", "Dataset", "Role", "User"]
