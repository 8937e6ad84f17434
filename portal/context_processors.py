from ops import authz, roles


def roles_and_permissions(request):
    """``can.<domain>.<verb>`` asks ops.authz (``{% if can.run.operate %}``); ``role_names`` labels the user."""
    user = getattr(request, "user", None)
    return {"can": authz.Can(user), "role_names": [r for r in (roles.ADMIN, roles.OPERATOR, roles.TENANT) if r in roles.role_names(user)]}
