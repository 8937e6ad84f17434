"""Who may use which endpoint, before any input is read. What each user may see is the
querysets' business (ops/api/runs.py): a run another user may not see is a 404, never a 403."""
from rest_framework.permissions import BasePermission

from portal import roles


class Operators(BasePermission):
    message = "Only operators start, cancel and steer runbooks."

    def has_permission(self, request, view):
        return roles.is_operator(request.user)
