"""My VMs (the VMs of the tenant's subscriptions; operators and admins see every VM) and My activity."""
import uuid

from django import forms
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from ops import authz
from ops.authz import requires
from ops.models import Run, Subscription, VirtualMachine
from ops.vmdata import STATUSES, visible_vms

PAGE_SIZE = 50


class VMFilter(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    status = forms.ChoiceField(required=False, choices=[("", "Any status")] + [(s, s) for s in STATUSES])
    subscription = forms.CharField(required=False, max_length=100)


@requires("vm.view")
@require_GET
def my_vms(request):
    form = VMFilter(request.GET or None)
    vms = visible_vms(request.user)
    if form.is_bound and not form.is_valid():
        vms = vms.none()  # a bad filter must not widen the list
    elif form.is_bound:
        d = form.cleaned_data
        if d["q"]:
            vms = vms.filter(name__icontains=d["q"])
        if d["status"]:
            vms = vms.filter(status=d["status"])
        if d["subscription"]:
            vms = vms.filter(subscription_name=d["subscription"])
    page = Paginator(vms.order_by("name", "pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    subs = authz.restrict(Subscription.objects.all(), request.user, "subscription.view").values_list("name", flat=True)
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "portal/my_vms.html", {"nav": "my_vms", "form": form, "page": page, "subscriptions": list(subs),
                                                  "query": query.urlencode()})


@requires("vm.view")
@require_GET
def vm_status(request):
    """``?id=<vm id>&id=...`` -> {vm id: status}: the status dots of My VMs, polled (only VMs the user may see)."""
    try:
        ids = [uuid.UUID(i) for i in request.GET.getlist("id")[:PAGE_SIZE]]
    except ValueError:
        return JsonResponse({"error": "id: each must be a VM ID (a GUID)"}, status=400)
    rows = authz.restrict(VirtualMachine.objects.filter(vmm_id__in=ids), request.user, "vm.view").values_list("vmm_id", "status")
    return JsonResponse({"vms": {str(i): s for i, s in rows}})


@requires("vm.view")
@require_GET
def activity(request):
    """The runs the user started, and the runs acting on their VMs (whoever started them)."""
    runs = authz.restrict(Run.objects.select_related("created_by"), request.user, "run.view")
    if authz.allowed(request.user, "run.list"):  # operators and admins: the runs they started (the console has all)
        runs = runs.filter(created_by=request.user)
    page = Paginator(runs.order_by("-pk"), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "portal/activity.html", {"nav": "activity", "page": page})
