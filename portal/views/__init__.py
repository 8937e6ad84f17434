"""The portal's pages: home and health here; what tenants click in ``tenant`` (My VMs, activity)
and ``vm`` (a VM's page and its actions)."""
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render

from ops import authz, roles


@login_required
def home(request):
    """Send each role to where its work is."""
    if authz.allowed(request.user, "run.start"):
        return redirect("ops:runs")
    if authz.allowed(request.user, "connection.change"):
        return redirect("ops:connections")
    if roles.is_tenant(request.user):
        return redirect("my_vms")
    return render(request, "portal/home.html")


def healthz(request):
    return JsonResponse({"ok": True})
