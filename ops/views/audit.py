from django.core.paginator import Paginator
from django.shortcuts import render

from portal.permissions import staff_required

from ..models import AuditEntry


@staff_required
def audit_list(request):
    entries = AuditEntry.objects.all()
    action = request.GET.get("action", "").strip()
    if action:
        entries = entries.filter(action__startswith=action)
    page = Paginator(entries, 100).get_page(request.GET.get("page"))
    return render(request, "ops/audit.html", {"nav": "audit", "page": page, "action": action})
