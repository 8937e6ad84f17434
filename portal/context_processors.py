
def roles(request):  # noqa: F811 - the processor is named for what it adds
    from . import roles as r

    user = getattr(request, "user", None)
    return {
        "is_tenant": r.is_tenant(user),
        "is_admin": r.is_admin(user),
        "is_operator": r.is_operator(user),
    }
