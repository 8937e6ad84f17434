"""Fabric inventory pages for operators and admins: clusters, hosts, VMs."""
from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Min, Q, Sum
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from ..authz import requires, restrict

from ..forms import VMFilterForm
from .. import vmfacts
from ..models import Cloud, HostCluster, Run, ServerConnection, SyncRecord, VirtualMachine, VMHost
from ..patching import holders
from ..services import inventory


def _fabric(model, user):
    return restrict(model.objects.all(), user, "fabric.view")


def _vms(user):
    return restrict(VirtualMachine.objects.all(), user, "vm.view")


def _latest_per_connection():
    latest = {}
    for rec in SyncRecord.objects.select_related("connection").order_by("-started_at")[:50]:
        latest.setdefault(rec.connection_id, rec)
    return latest


def _host_rows(hosts):
    return hosts.annotate(
        vm_count=Count("vms"),
        running=Count("vms", filter=Q(vms__status="Running")),
        checkpoints=Sum("vms__checkpoint_count"),
        oldest_checkpoint=Min("vms__oldest_checkpoint_at"),
    ).select_related("cluster", "connection")


@requires("fabric.view")
def clusters(request):
    user = request.user
    cluster_qs = _fabric(HostCluster, user).select_related("connection").annotate(
        host_count=Count("hosts", distinct=True),
        maintenance=Count("hosts", filter=Q(hosts__in_maintenance=True), distinct=True),
    )
    hosts = holders.flag(_host_rows(_fabric(VMHost, user)))
    by_cluster = {}
    for h in hosts:
        by_cluster.setdefault(h.cluster_id, []).append(h)
    context = {
        "nav": "fabric",
        "clusters": [(c, by_cluster.get(c.pk, [])) for c in cluster_qs],
        "standalone": by_cluster.get(None, []),
        "connections": ServerConnection.objects.filter(kind="vmm"),
        "syncs": _latest_per_connection(),
        "totals": _vms(user).aggregate(vms=Count("id"), checkpoints=Sum("checkpoint_count"),
                                                                    oldest=Min("oldest_checkpoint_at")),
        "clouds": _fabric(Cloud, user).annotate(vm_count=Count("vms")),
    }
    return render(request, "ops/fabric/clusters.html", context)


@requires("fabric.view")
def cluster_detail(request, pk):
    cluster = get_object_or_404(_fabric(HostCluster, request.user).select_related("connection"), pk=pk)
    hosts = holders.flag(_host_rows(_fabric(VMHost, request.user).filter(cluster=cluster)))
    vms = _vms(request.user).filter(host__cluster=cluster).select_related("host", "cloud")
    return render(request, "ops/fabric/cluster.html", {"nav": "fabric", "cluster": cluster, "hosts": hosts, "vms": vms})


@requires("fabric.view")
def host_detail(request, pk):
    host = get_object_or_404(_fabric(VMHost, request.user).select_related("cluster", "connection"), pk=pk)
    holders.flag([host])
    vms = _vms(request.user).filter(host=host).select_related("cloud")
    last_sync = SyncRecord.objects.filter(connection=host.connection, ok=True).order_by("-started_at").first()
    return render(request, "ops/fabric/host.html", {"nav": "fabric", "host": host, "vms": vms, "last_sync": last_sync})


@requires("fabric.view")
def vm_list(request):
    form = VMFilterForm(request.GET or None)
    vms = _vms(request.user).select_related("host", "host__cluster", "cloud")
    if form.is_bound:
        form.is_valid()
        if form.errors:  # an invalid filter must not silently widen the list to every VM
            vms = vms.none()
        d = form.cleaned_data
        if d.get("q"):
            vms = vms.filter(name__icontains=d["q"])
        if d.get("status"):
            vms = vms.filter(status=d["status"])
        if d.get("cluster"):
            vms = vms.filter(host__cluster_id=d["cluster"])
        if d.get("host"):
            vms = vms.filter(host_id=d["host"])
        if d.get("cloud"):
            vms = vms.filter(cloud_id=d["cloud"])
        if d.get("batch"):
            vms = vms.filter(pk__in=vmfacts.same_batch(vms, d["batch"], d.get("property") or vmfacts.BATCH_PROPERTY))
    page = Paginator(vms.order_by("name"), 100).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "ops/fabric/vms.html", {"nav": "fabric", "form": form, "page": page, "query": query.urlencode(),
                                                   "statuses": ["Running", "PowerOff", "Saved", "Paused"]})


@requires("fabric.view")
def vm_detail(request, pk):
    vm = get_object_or_404(restrict(VirtualMachine.objects.all(), request.user, "vm.view")
                           .select_related("host", "host__cluster", "cloud", "connection"), pk=pk)
    runs = restrict(Run.objects.all(), request.user, "run.view")
    return render(request, "ops/fabric/vm.html", {"nav": "fabric", "f": vmfacts.gather(vm, runs)})


@requires("fabric.sync")
@require_POST
def sync_now(request):
    conn = None
    if request.POST.get("connection"):
        try:
            conn = ServerConnection.objects.get(pk=int(request.POST["connection"]), kind="vmm")
        except (ValueError, OverflowError, ServerConnection.DoesNotExist):
            messages.error(request, "No such VMM connection; nothing was synced.")
            return redirect("ops:clusters")
    targets = inventory.request_sync(request.user, conn)
    if targets:
        messages.success(request, "Sync queued for " + ", ".join(c.name for c in targets) + ". The page shows the result once the worker has run it.")
    else:
        messages.warning(request, "No enabled VMM connection to sync. An admin adds one under Connections.")
    next_url = request.POST.get("next", "")
    if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect("ops:clusters")
