from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from ops import authz


@login_required
def home(request):
    """Send each role to where its work is."""
    if authz.allowed(request.user, "run.start"):
        return redirect("ops:runs")
    if authz.allowed(request.user, "connection.change"):
        return redirect("ops:connections")
    return render(request, "portal/home.html")


def healthz(request):
    from django.http import JsonResponse

    return JsonResponse({"ok": True})
