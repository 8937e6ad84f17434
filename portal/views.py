from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from . import roles


@login_required
def home(request):
    """Send each role to where its work is."""
    if roles.is_operator(request.user):
        return redirect("ops:runs")
    if roles.is_admin(request.user):
        return redirect("ops:connections")
    return render(request, "portal/home.html")


def healthz(request):
    from django.http import JsonResponse

    return JsonResponse({"ok": True})
