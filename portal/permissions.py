"""View decorators and mixins that turn a role check into a 403 (never a redirect
loop, never a silently missing button)."""
import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied

from . import roles


def role_required(*allowed: str):
    checks = {roles.TENANT: roles.is_tenant, roles.ADMIN: roles.is_admin, roles.OPERATOR: roles.is_operator}

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not any(checks[r](request.user) for r in allowed):
                raise PermissionDenied(f"This page is for: {', '.join(allowed)}.")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


operator_required = role_required(roles.OPERATOR)
admin_required = role_required(roles.ADMIN)
staff_required = role_required(roles.ADMIN, roles.OPERATOR)
