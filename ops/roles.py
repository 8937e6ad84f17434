"""The three roles of Slipway, kept as Django groups.

Superusers count as admin and operator. Roles say who a user is; what a user
may do with which object is decided by ``ops.authz`` alone (it reads these
helpers). Lives in ``ops`` so that ``ops`` never imports ``portal``.
"""
from django.contrib.auth.models import Group

TENANT = "tenant"
ADMIN = "admin"
OPERATOR = "operator"
ALL_ROLES = (TENANT, ADMIN, OPERATOR)


def role_names(user) -> set[str]:
    if not getattr(user, "is_authenticated", False):
        return set()
    cached = getattr(user, "_slipway_roles", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if user.is_superuser:
            cached |= {ADMIN, OPERATOR}
        user._slipway_roles = cached
    return cached


def forget(user) -> None:
    """Drop the user's cached roles: the next check reads them again (a long-lived websocket re-checks)."""
    if hasattr(user, "_slipway_roles"):
        del user._slipway_roles


def is_tenant(user) -> bool:
    return TENANT in role_names(user)


def is_admin(user) -> bool:
    return ADMIN in role_names(user)


def is_operator(user) -> bool:
    return OPERATOR in role_names(user)


def is_staff_role(user) -> bool:
    """Admins and operators see the whole fabric."""
    return bool(role_names(user) & {ADMIN, OPERATOR})


def grant(user, *roles: str) -> None:
    for role in roles:
        if role not in ALL_ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ALL_ROLES)}")
        group, _ = Group.objects.get_or_create(name=role)
        user.groups.add(group)
    forget(user)
