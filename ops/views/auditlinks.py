"""Where each object the audit log names lives, for the reader at hand (a connection's
page is for admins; a deleted object has no page)."""
from django.urls import reverse

from ..authz import allowed, restrict
from ..models import Run, RunSchedule, ServerConnection, Step, VirtualMachine, VMHost


def _existing(qs, ids):
    """The pks among ``ids`` that ``qs`` (a model's visible rows) still holds."""
    ids = [int(i) for i in ids if i.isdigit() and len(i) < 19]
    return set(qs.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()


def links(entries, user) -> dict[int, str]:
    """AuditEntry pk -> URL of the object it names, for the entries shown on one page."""
    by_type: dict[str, set] = {}
    for e in entries:
        by_type.setdefault(e.object_type, set()).add(e.object_id)
    out = {}
    runs = _existing(restrict(Run.objects.all(), user, "run.view"), by_type.get("Run", ()))
    schedules = _existing(RunSchedule.objects.all(), by_type.get("RunSchedule", ()))
    connections = _existing(ServerConnection.objects.all(), by_type.get("ServerConnection", ())) if allowed(user, "connection.view") else set()
    vms = _existing(restrict(VirtualMachine.objects.all(), user, "vm.view"), by_type.get("VirtualMachine", ()))
    hosts = _existing(restrict(VMHost.objects.all(), user, "fabric.view"), by_type.get("VMHost", ()))
    steps = dict(Step.objects.filter(pk__in=[int(i) for i in by_type.get("Step", ()) if i.isdigit() and len(i) < 19],
                                     run__in=restrict(Run.objects.all(), user, "run.view")).values_list("pk", "run_id"))
    for e in entries:
        pk = int(e.object_id) if e.object_id.isdigit() else None
        if pk is None:
            continue
        if e.object_type == "Run" and pk in runs:
            out[e.pk] = reverse("ops:run", args=[pk])
        elif e.object_type == "Step" and pk in steps:
            out[e.pk] = reverse("ops:run", args=[steps[pk]]) + f"#step-{pk}"
        elif e.object_type == "RunSchedule" and pk in schedules:
            out[e.pk] = reverse("ops:schedules") + f"#schedule-{pk}"
        elif e.object_type == "ServerConnection" and pk in connections:
            out[e.pk] = reverse("ops:connection_edit", args=[pk])
        elif e.object_type == "VirtualMachine" and pk in vms:
            out[e.pk] = reverse("ops:vm", args=[pk])
        elif e.object_type == "VMHost" and pk in hosts:
            out[e.pk] = reverse("ops:host", args=[pk])
    return out
