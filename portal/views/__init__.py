"""The portal's pages: home and health here; what tenants click in ``tenant`` (My VMs, activity)
and ``vm`` (a VM's page and its actions)."""
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render

from ops import authz, roles
from ops.views import dashboard


@login_required
def home(request):
    """Send each role to where its work is."""
    if authz.allowed(request.user, "fabric.view"):   # operators and admins: the dashboard of what needs them
        return dashboard.dashboard(request)
    if roles.is_tenant(request.user):
        return redirect("my_vms")
    return render(request, "portal/home.html")


def healthz(request):
    return JsonResponse({"ok": True})
