from marketplace.models.audit import AuditEntry, AuditHead
from marketplace.models.users import Role, User

__all__ = ["AuditEntry", "AuditHead", "Role", "User"]
