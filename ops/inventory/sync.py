"""Inventory sync: one call per object type, written to the DB in bulk.

Rows are upserted by (connection, vmm_id); rows the server no longer has are
deleted. A failed sync changes nothing and leaves a SyncRecord saying why.
"""
from __future__ import annotations

import logging
import time
import uuid

from django.db import transaction
from django.utils import timezone

from ..fabric import errors, vmm
from ..fabric.session import session_for
from ..models import Checkpoint, Cloud, HostCluster, ServerConnection, SyncRecord, UserRole, VirtualMachine, VMHost

log = logging.getLogger("slipway.inventory")
BATCH = 2000


def _uuid(value: str) -> uuid.UUID:
    return uuid.UUID(str(value))


def _upsert(model, connection, rows: list, fields: list[str]) -> dict[uuid.UUID, int]:
    """Write ``rows`` (unsaved instances) by (connection, vmm_id): only new and changed rows are
    written; rows the server no longer has are deleted. Returns vmm_id -> pk of every kept row.

    ``synced_at`` on a row means "last changed by a sync"; when the inventory
    was last read is the connection's newest SyncRecord.
    """
    compared = [f for f in fields if f != "synced_at"]
    columns = [model._meta.get_field(f).attname for f in compared]
    existing = {}
    for values in model.objects.filter(connection=connection).values_list("vmm_id", "pk", *columns):
        existing[values[0]] = (values[1], tuple(values[2:]))
    changed = []
    for row in rows:
        current = existing.get(row.vmm_id)
        if current is None or current[1] != tuple(getattr(row, c) for c in columns):
            changed.append(row)
    if changed:
        model.objects.bulk_create(changed, batch_size=BATCH, update_conflicts=True,
                                  unique_fields=["connection", "vmm_id"], update_fields=fields)
    keep = {row.vmm_id for row in rows}
    gone = [pk for vmm_id, (pk, _) in existing.items() if vmm_id not in keep]
    for i in range(0, len(gone), BATCH):
        model.objects.filter(pk__in=gone[i:i + BATCH]).delete()
    ids = {vmm_id: pk for vmm_id, (pk, _) in existing.items() if vmm_id in keep}
    new = [row.vmm_id for row in changed if row.vmm_id not in ids]
    if new:
        for i in range(0, len(new), BATCH):
            ids.update(model.objects.filter(connection=connection, vmm_id__in=new[i:i + BATCH]).values_list("vmm_id", "pk"))
    return ids


def fetch(connection: ServerConnection) -> dict:
    """Everything the inventory needs, from the server (no DB writes)."""
    s = session_for(connection)
    timeout = max(60.0, float(connection.operation_timeout))
    return {
        "clouds": vmm.list_clouds(s),
        "clusters": vmm.list_clusters(s),
        "hosts": vmm.list_hosts(s),
        "vms": vmm.list_vms(s, timeout=timeout),
        "checkpoints": vmm.list_checkpoints(s),
        "user_roles": vmm.list_user_roles(s),
    }


@transaction.atomic
def store(connection: ServerConnection, data: dict) -> dict:
    now = timezone.now()
    c = connection
    cloud_ids = _upsert(Cloud, c, [Cloud(connection=c, vmm_id=_uuid(x.id), name=x.name, description=x.description, synced_at=now)
                                   for x in data["clouds"]], ["name", "description", "synced_at"])
    cluster_ids = _upsert(HostCluster, c, [HostCluster(connection=c, vmm_id=_uuid(x.id), name=x.name, synced_at=now)
                                           for x in data["clusters"]], ["name", "synced_at"])
    cloud_by_name = {x.name.lower(): cloud_ids.get(_uuid(x.id)) for x in data["clouds"]}
    cluster_by_name = {x.name.lower(): cluster_ids.get(_uuid(x.id)) for x in data["clusters"]}
    host_ids = _upsert(VMHost, c, [
        VMHost(connection=c, vmm_id=_uuid(h.id), name=h.name, cluster_id=cluster_by_name.get(h.cluster_name.lower()),
               overall_state=h.overall_state, communication_state=h.communication_state, in_maintenance=h.in_maintenance,
               total_memory_mb=h.total_memory_mb, available_memory_mb=h.available_memory_mb, synced_at=now)
        for h in data["hosts"]
    ], ["name", "cluster", "overall_state", "communication_state", "in_maintenance", "total_memory_mb",
        "available_memory_mb", "synced_at"])
    host_by_name = {h.name.lower(): host_ids.get(_uuid(h.id)) for h in data["hosts"]}
    for h in data["hosts"]:  # VMM reports HostName as the short or the full name
        host_by_name.setdefault(h.name.split(".")[0].lower(), host_ids.get(_uuid(h.id)))

    by_vm: dict[str, list] = {}
    for cp in data["checkpoints"]:
        by_vm.setdefault(cp.vm_id.lower() if cp.vm_id else cp.vm_name.lower(), []).append(cp)

    vm_rows = []
    for v in data["vms"]:
        cps = by_vm.get(v.id.lower()) or by_vm.get(v.name.lower()) or []
        dates = [cp.added_at for cp in cps if cp.added_at]
        vm_rows.append(VirtualMachine(
            connection=c, vmm_id=_uuid(v.id), name=v.name, status=v.status,
            host_id=host_by_name.get(v.host_name.lower()) or host_by_name.get(v.host_name.split(".")[0].lower()),
            cloud_id=cloud_by_name.get(v.cloud_name.lower()), is_highly_available=v.is_highly_available,
            memory_mb=v.memory_mb, owner=v.owner, user_role_id=v.user_role_id.lower(),
            user_role_name=v.user_role_name, custom=v.custom, checkpoint_count=len(cps),
            oldest_checkpoint_at=min(dates) if dates else None, synced_at=now,
        ))
    vm_ids = _upsert(VirtualMachine, c, vm_rows, ["name", "status", "host", "cloud", "is_highly_available", "memory_mb",
                                                  "owner", "user_role_id", "user_role_name", "custom", "checkpoint_count", "oldest_checkpoint_at", "synced_at"])
    cp_rows = []
    vm_pk_by_name = {v.name.lower(): vm_ids.get(_uuid(v.id)) for v in data["vms"]}
    vm_pk_by_id = {v.id.lower(): vm_ids.get(_uuid(v.id)) for v in data["vms"]}
    for cp in data["checkpoints"]:
        vm_pk = vm_pk_by_id.get(cp.vm_id.lower()) if cp.vm_id else None
        vm_pk = vm_pk or vm_pk_by_name.get(cp.vm_name.lower())
        if vm_pk:
            cp_rows.append(Checkpoint(vm_id=vm_pk, vmm_id=_uuid(cp.id), name=cp.name, description=cp.description,
                                      added_at=cp.added_at))
    _store_checkpoints(c, cp_rows)
    _upsert(UserRole, c, [UserRole(connection=c, vmm_id=_uuid(r.id), name=r.name, profile=r.profile,
                                   permissions=r.permissions, synced_at=now) for r in data["user_roles"]],
            ["name", "profile", "permissions", "synced_at"])
    return {"clouds": len(data["clouds"]), "clusters": len(data["clusters"]), "hosts": len(data["hosts"]),
            "vms": len(vm_rows), "checkpoints": len(cp_rows), "user_roles": len(data["user_roles"])}


def _store_checkpoints(connection, rows: list) -> None:
    existing = {(vm_id, vmm_id): (pk, (name, description, added_at)) for pk, vm_id, vmm_id, name, description, added_at in
                Checkpoint.objects.filter(vm__connection=connection)
                .values_list("pk", "vm_id", "vmm_id", "name", "description", "added_at")}
    keep, stale, new = set(), [], []
    for row in rows:
        key = (row.vm_id, row.vmm_id)
        keep.add(key)
        current = existing.get(key)
        if current is None:
            new.append(row)
        elif current[1] != (row.name, row.description, row.added_at):
            stale.append(current[0])
            new.append(row)
    stale += [pk for key, (pk, _) in existing.items() if key not in keep]
    for i in range(0, len(stale), BATCH):
        Checkpoint.objects.filter(pk__in=stale[i:i + BATCH]).delete()
    Checkpoint.objects.bulk_create(new, batch_size=BATCH)


def sync_connection(connection: ServerConnection, requested_by: str = "") -> SyncRecord:
    record = SyncRecord.objects.create(connection=connection, requested_by=requested_by)
    started = time.monotonic()
    try:
        counts = store(connection, fetch(connection))
    except errors.FabricError as exc:
        record.error = str(exc)
        ServerConnection.objects.filter(pk=connection.pk).update(last_error=str(exc))
        log.warning("inventory sync of %s failed: %s", connection.name, exc)
    else:
        record.ok = True
        record.counts = {**counts, "seconds": round(time.monotonic() - started, 3)}
        ServerConnection.objects.filter(pk=connection.pk).update(last_ok_at=timezone.now(), last_error="")
    record.finished_at = timezone.now()
    record.save(update_fields=["ok", "counts", "error", "finished_at"])
    return record


def sync_all(requested_by: str = "scheduler") -> list[SyncRecord]:
    """Every enabled VMM connection (the django-q2 scheduled task)."""
    return [sync_connection(c, requested_by) for c in ServerConnection.objects.filter(kind="vmm", enabled=True)]


def sync_task(connection_id: int, requested_by: str = "") -> dict:
    """django-q2 entry point for "Sync now"."""
    connection = ServerConnection.objects.get(pk=connection_id)
    record = sync_connection(connection, requested_by)
    return {"ok": record.ok, "counts": record.counts, "error": record.error}
