from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from ops.views import dashboard

from . import roles


@login_required
def home(request):
    """Operators and admins: the dashboard of what needs them; tenants keep their own home."""
    if roles.is_staff_role(request.user):
        return dashboard.dashboard(request)
    return render(request, "portal/home.html")


def healthz(request):
    from django.http import JsonResponse

    return JsonResponse({"ok": True})
