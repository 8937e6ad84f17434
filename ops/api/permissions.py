"""Who may use which endpoint, before any input is read: ops/authz.py's named actions, as the
pages ask them. Which rows a user may see is ``authz.restrict`` in each queryset: a run another
user may not see is a 404, never a 403."""
from rest_framework.permissions import BasePermission

from .. import authz


def may(action: str) -> BasePermission:
    """A permission that lets through the users ``authz.allowed`` lets do ``action`` at all."""

    class May(BasePermission):
        message = authz.refusal(action)

        def has_permission(self, request, view):
            return authz.allowed(request.user, action)

    May.__name__ = May.__qualname__ = f"May({action})"
    return May()
