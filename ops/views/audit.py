from django.core.paginator import Paginator
from django.shortcuts import render

from ..authz import requires, restrict

from ..models import AuditEntry
from . import auditlinks


@requires("audit.view")
def audit_list(request):
    entries = restrict(AuditEntry.objects.all(), request.user, "audit.view")
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    links = auditlinks.links(page.object_list, request.user)
    rows = [(e, links.get(e.pk)) for e in page.object_list]
    return render(request, "ops/audit.html", {"nav": "audit", "page": page, "rows": rows, "action": action})
