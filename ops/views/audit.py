from django.core.paginator import Paginator
from django.shortcuts import render

from portal.permissions import staff_required

from ..models import AuditEntry
from . import auditlinks


@staff_required
def audit_list(request):
    entries = AuditEntry.objects.all()
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    links = auditlinks.links(page.object_list, request.user)
    rows = [(e, links.get(e.pk)) for e in page.object_list]
    return render(request, "ops/audit.html", {"nav": "audit", "page": page, "rows": rows, "action": action})
