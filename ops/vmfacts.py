"""What the page of one VM shows: its facts, its checkpoints with their age, the runs
that touched it and its batch. The operators' VM page (ops/views/fabric.py) renders
it; a tenant's view of their own VM can reuse ``gather`` with the runs they may see."""
import dataclasses

from django.utils import timezone

from .models import Checkpoint, Run, VirtualMachine

BATCH_PROPERTY = "Custom1"   # the batch runbook's default property
RUNS_SHOWN = 50


@dataclasses.dataclass
class CheckpointAge:
    checkpoint: Checkpoint
    age_days: int | None


@dataclasses.dataclass
class VMFacts:
    vm: VirtualMachine
    checkpoints: list
    runs: list
    batch: str
    batch_property: str
    batch_size: int


def runs_touching(vm, runs=None):
    """Runs with a step that acted on this VM (by its VMM ID), newest first."""
    runs = Run.objects.all() if runs is None else runs
    ids = [str(vm.vmm_id), str(vm.vmm_id).upper()]
    return (runs.filter(connection_id=vm.connection_id, steps__target_id__in=ids).distinct()
            .select_related("created_by", "schedule").order_by("-created_at"))


def same_batch(vms, value: str, prop: str = BATCH_PROPERTY) -> list[int]:
    """The pks of the VMs whose custom property ``prop`` holds ``value``."""
    value = str(value).strip()
    return [pk for pk, custom in vms.values_list("pk", "custom").iterator(chunk_size=2000)
            if str((custom or {}).get(prop) or "").strip() == value]


def gather(vm, runs=None) -> VMFacts:
    now = timezone.now()
    checkpoints = [CheckpointAge(c, (now - c.added_at).days if c.added_at else None)
                   for c in vm.checkpoints.order_by("added_at", "id")]
    batch = str((vm.custom or {}).get(BATCH_PROPERTY) or "").strip()
    size = len(same_batch(VirtualMachine.objects.filter(connection_id=vm.connection_id), batch)) if batch else 0
    return VMFacts(vm, checkpoints, list(runs_touching(vm, runs)[:RUNS_SHOWN]), batch, BATCH_PROPERTY, size)
