"""What the operator's and admin's home page shows: what needs them today.

``gather(user)`` reads it all (the view in ops/views/dashboard.py only renders):
runs under way, runs waiting for the operator, runs failed in the last 7 days,
schedules refusing their slots or paused, hosts in maintenance (and the run that
put them there, when one did), connections whose last use failed, and how old the
inventory is. Each item carries what its page needs to be linked.
"""
import dataclasses
import datetime as dt

from django.db.models import Q
from django.utils import timezone

from .authz import restrict
from .models import Run, RunSchedule, ServerConnection, Step, SyncRecord, VMHost

FAILED_DAYS = 7
STALE_INVENTORY = dt.timedelta(minutes=15)   # the inventory sync runs every 5 minutes
LIMIT = 20


@dataclasses.dataclass
class HostInMaintenance:
    host: VMHost
    run: Run | None   # the newest run that acted on the host, if Slipway put it there


@dataclasses.dataclass
class InventoryAge:
    connection: ServerConnection
    last_ok: SyncRecord | None
    last: SyncRecord | None

    @property
    def stale(self) -> bool:
        return self.last_ok is None or timezone.now() - self.last_ok.finished_at > STALE_INVENTORY

    @property
    def failing(self) -> bool:
        return self.last is not None and not self.last.ok and self.last.finished_at is not None


@dataclasses.dataclass
class Dashboard:
    under_way: list
    waiting: list
    failed: list
    failed_total: int
    schedules: list
    hosts: list
    connections: list
    inventory: list

    @property
    def any_active(self) -> bool:
        return bool(self.under_way or self.waiting)

    @property
    def all_clear(self) -> bool:
        return not (self.waiting or self.failed or self.schedules or self.hosts or self.connections
                    or any(i.stale or i.failing for i in self.inventory))


def gather(user) -> Dashboard:
    runs = restrict(Run.objects.all(), user, "run.view").select_related("created_by", "schedule")
    since = timezone.now() - dt.timedelta(days=FAILED_DAYS)
    failed = runs.filter(state=Run.State.FAILED).filter(Q(finished_at__gte=since) | Q(finished_at=None, created_at__gte=since))
    return Dashboard(
        under_way=list(runs.filter(state__in=[s for s in Run.ACTIVE_STATES if s != Run.State.WAITING]).order_by("created_at")[:LIMIT]),
        waiting=list(runs.filter(state=Run.State.WAITING).order_by("created_at")[:LIMIT]),
        failed=list(failed.order_by("-finished_at", "-id")[:LIMIT]),
        failed_total=failed.count(),
        schedules=list(RunSchedule.objects.filter(Q(enabled=False) | Q(last_slot_outcome=RunSchedule.SlotOutcome.REFUSED))
                       .select_related("last_run").order_by("-enabled", "name")[:LIMIT]),
        hosts=_hosts_in_maintenance(user),
        connections=list(ServerConnection.objects.exclude(last_error="").order_by("kind", "name")),
        inventory=_inventory_age(),
    )


def _hosts_in_maintenance(user) -> list[HostInMaintenance]:
    hosts = list(restrict(VMHost.objects.all(), user, "fabric.view").filter(in_maintenance=True).select_related("cluster", "connection")[:LIMIT])
    out = []
    for host in hosts:
        step = (Step.objects.filter(run__connection_id=host.connection_id)
                .filter(Q(target__iexact=host.name) | Q(target_id__in=[str(host.vmm_id), str(host.vmm_id).upper()]))
                .select_related("run").order_by("-run__created_at").first())
        out.append(HostInMaintenance(host, step.run if step else None))
    return out


def _inventory_age() -> list[InventoryAge]:
    out = []
    for conn in ServerConnection.objects.filter(kind=ServerConnection.Kind.VMM, enabled=True):
        syncs = SyncRecord.objects.filter(connection=conn)
        out.append(InventoryAge(conn, syncs.filter(ok=True).exclude(finished_at=None).first(), syncs.first()))
    return out
