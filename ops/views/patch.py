"""The patch run's preflight page (/ops/patch/): pick a cluster, read what a patch run would do
(ops/patching/preflight.py), tick each VM the drain will save, start. Read-only until the start,
which goes through the run service like every start (ops/services/runs.py)."""
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import path

from ..authz import requires, restrict
from ..models import HostCluster
from ..runbooks import registry
from ..services import runs as run_service

FIELDS = ("cluster", "order", "deployment", "max_failed", "retries", "reboot_timeout", "non_ha", "move_stopped_ha",
          "failback", "hosts", "hold_collection")


@requires("run.start")
def patch_preflight(request):
    source = request.POST if request.method == "POST" else request.GET
    raw = {k: source.get(k, "").strip() for k in FIELDS if source.get(k, "").strip()}
    clusters = sorted(set(restrict(HostCluster.objects.all(), request.user, "fabric.view").values_list("name", flat=True)))
    pf, errors, status = None, [], 200
    if raw.get("cluster"):
        try:
            pf = registry.get("patch-cluster").preview(raw)
        except ValidationError as exc:
            errors, status = exc.messages, 400
    if request.method == "POST" and pf is not None:
        confirm = [n for n in request.POST.getlist("confirm") if n]
        try:
            run = run_service.start_run(request.user, "patch-cluster", {**raw, "confirm": ",".join(confirm)})
        except ValidationError as exc:
            errors, status = exc.messages, 400
        else:
            return redirect("ops:run", pk=run.pk)
    elif request.method == "POST":
        status = 400
        errors = errors or ["cluster is required (the host cluster to patch, e.g. CLU-B)"]
    return render(request, "ops/patch/preflight.html", {
        "nav": "runs", "clusters": clusters, "raw": raw, "pf": pf, "errors": errors,
        "more_open": any(k in raw for k in FIELDS[3:]),
        "ordered": sorted(pf.nodes, key=lambda n: pf.order.index(n.name) if n.name in pf.order else 99) if pf else [],
    }, status=status)


urlpatterns = [path("patch/", patch_preflight, name="patch")]
