"""Re-read a few VMs from the fabric at once (not at the next full sync): what a run that just
ended changed shows on the VM page and in My VMs immediately; ``mark_maintenance`` does the same
for a host a run drained or resumed.

``refresh_vms(connection, vms)`` reads the VMs and their checkpoints in two round trips
(``ops/fabric/bulk.py``) and writes status, memory, owner, user role, checkpoint count and the
checkpoint rows of those VMs only. A VM the server no longer has is left for the full sync
(``ops/inventory/sync.py``) to remove with everything else.
"""
from __future__ import annotations

import uuid

from django.db import transaction
from django.utils import timezone

from ..fabric import bulk, errors
from ..fabric.session import session_for
from ..models import Checkpoint, RunTarget, VirtualMachine, VMHost
from . import sync

FULL_SYNC_ABOVE = 200
FIELDS = ["status", "memory_mb", "owner", "user_role_id", "user_role_name", "checkpoint_count", "oldest_checkpoint_at",
          "is_highly_available", "synced_at"]


def refresh_vms(connection, vms) -> int:
    """Re-read ``vms`` (VirtualMachine rows of ``connection``); returns how many were found on the server."""
    vms = list(vms)
    if not vms:
        return 0
    s = session_for(connection)
    ids = [str(v.vmm_id).lower() for v in vms]
    found = bulk.get_vms(s, ids)
    checkpoints = bulk.checkpoints_of(s, [i for i in ids if i in found])
    now = timezone.now()
    with transaction.atomic():
        for vm in vms:
            info = found.get(str(vm.vmm_id).lower())
            if info is None:
                continue
            cps = checkpoints.get(info.id.lower(), [])
            dates = [cp.added_at for cp in cps if cp.added_at]
            vm.status, vm.memory_mb, vm.owner = info.status, info.memory_mb, info.owner
            vm.user_role_id, vm.user_role_name = info.user_role_id.lower(), info.user_role_name
            vm.is_highly_available = info.is_highly_available
            vm.checkpoint_count, vm.oldest_checkpoint_at, vm.synced_at = len(cps), min(dates) if dates else None, now
            vm.save(update_fields=FIELDS)
            Checkpoint.objects.filter(vm=vm).exclude(vmm_id__in=[uuid.UUID(cp.id) for cp in cps]).delete()
            have = set(Checkpoint.objects.filter(vm=vm).values_list("vmm_id", flat=True))
            Checkpoint.objects.bulk_create([Checkpoint(vm=vm, vmm_id=uuid.UUID(cp.id), name=cp.name, description=cp.description,
                                                       added_at=cp.added_at) for cp in cps if uuid.UUID(cp.id) not in have])
    return len(found)


def mark_maintenance(connection, host_name: str, on: bool) -> int:
    """What a run just proved of a host (its drain or its resume succeeded in VMM), written to its
    inventory row at once instead of at the next sync; returns the rows changed."""
    return VMHost.objects.filter(connection=connection, name__iexact=host_name).update(in_maintenance=on)


def refresh_run_targets(run) -> int:
    """Re-read the VMs a run acted on (its RunTarget rows); beyond ``FULL_SYNC_ABOVE`` of them one full
    sync of the server (written in bulk) is cheaper than rows one by one."""
    vms = VirtualMachine.objects.filter(pk__in=RunTarget.objects.filter(run=run).values("vm_id"))
    if vms.count() > FULL_SYNC_ABOVE:
        record = sync.sync_connection(run.connection, f"run {run.pk}")
        if not record.ok:
            raise errors.FabricError(run.connection.name, record.error, cmdlet="inventory sync")
        return record.counts.get("vms", 0)
    return refresh_vms(run.connection, vms)
