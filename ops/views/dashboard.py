"""The operator's and admin's home page (``/``): what needs them today. Thin: the
data comes from ops/dashboard.py; while runs are under way the page refreshes its
body every 5 s (htmx asks for the same URL and gets the body alone)."""
from django.shortcuts import render

from .. import dashboard as data
from ..authz import requires


@requires("fabric.view")
def dashboard(request):
    template = "ops/dashboard/_body.html" if request.headers.get("HX-Request") else "ops/dashboard/index.html"
    return render(request, template, {"nav": "dashboard", "d": data.gather(request.user),
                                      "failed_days": data.FAILED_DAYS})
