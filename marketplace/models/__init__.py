from marketplace.models.users import Role, User

__all__ = ["Role", "User"]
