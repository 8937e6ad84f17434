from django.core.paginator import Paginator
from django.shortcuts import render

from ..authz import requires, restrict

from ..models import AuditEntry


@requires("audit.view")
def audit_list(request):
    entries = restrict(AuditEntry.objects.all(), request.user, "audit.view")
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    return render(request, "ops/audit.html", {"nav": "audit", "page": page, "action": action})
