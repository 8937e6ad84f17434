"""The roles live in ``ops.roles`` (ops never imports portal); the portal uses them from there."""
from ops.roles import ADMIN, ALL_ROLES, OPERATOR, TENANT, grant, is_admin, is_operator, is_staff_role, is_tenant, role_names  # noqa: F401
