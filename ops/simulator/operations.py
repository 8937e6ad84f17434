"""The VMM rules: what each long operation checks, and what its job does.

Every function runs under ``fabric.lock``, validates at once (raising ``VmmFailure``,
which the cmdlet turns into a terminating error with ``(Error ID: N)``), then starts a
job (jobs.py) and returns it. Rules implemented:

- an entity busy in a running job refuses a second job (2606, names the job and its ID);
- Start: only PowerOff/Saved VMs; not on a host in maintenance; needs free host memory;
- Stop: PowerOff is an error; -SaveState needs Running/Paused; -Shutdown needs Running;
  a plain stop (turn off) of a Saved VM discards the saved state;
- Disable-SCVMHost: the host stops taking placements at once. With -MoveWithinCluster,
  running (or paused) HA VMs are live-migrated one after the other to the other node that
  is not in maintenance and has the most free memory at that moment; running non-HA VMs
  are saved; PowerOff/Saved VMs stay. An HA VM that no node has room for is saved
  and the job ends SucceedWithInfo with ErrorInfo 10470 naming it (VMM's "completed with
  info"). Without the switch every running VM is saved. -MoveWithinCluster on a host
  that is not in a cluster is refused (10468); a host already in maintenance is refused
  (10434). Enable-SCVMHost moves nothing back.
- Move-SCVirtualMachine: not to the same host (10601), not to a host in maintenance
  (10653), a running VM needs free memory on the target (13206), checked again when
  the migration step ends (then the job fails);
- checkpoints record the VM status; restore returns the VM to it and keeps later
  checkpoints; remove merges (the checkpoint is gone, its children re-parented).
"""
from __future__ import annotations

import uuid

from . import errors as E
from .errors import VmmFailure
from .fabric import USES_MEMORY, Checkpoint
from .jobs import Step, utcnow


def ensure_free(f, ent, kind: str, name: str):
    job = f.jobs.locked_by(ent.id)
    if job is not None:
        raise VmmFailure(E.E_LOCKED, "Unable to perform the job because one or more of the selected objects are "
                         f"locked by another job. The {kind} {name} is currently in use by job "
                         f"'{job.name}' (ID: {job.id}).",
                         "To find out which job is locking the object, use Get-SCJob -Running, wait for it to "
                         "finish and then try the operation again.", "ResourceBusy")


def _submit(f, name, cmdlet, owner, steps, locks, targets, result, on_fail=None, box=None):
    fault = f.faults.take(cmdlet, targets) if f.faults is not None else None
    rname, rid, rtype = result
    job = f.jobs.new(name, cmdlet, owner, steps, locks=list(locks), result_name=rname, result_id=rid,
                     result_type=rtype, on_fail=on_fail)
    if fault is not None:
        if fault.mode == "hang":
            job.hang = True
        else:
            job.fail_message, job.fail_code = fault.message, fault.code
    if box is not None:
        box.append(job)
    return f.jobs.add(job)


def _clear(*vms):
    def undo():
        for vm in vms:
            vm.transient = None
            vm.migrating = False
    return undo


def _transient(vm, state, migrating=False):
    def begin():
        vm.transient = state
        vm.migrating = migrating
    return begin


def _host(f, vm):
    return f.hosts[vm.host_id]


# ---- VMs ---------------------------------------------------------------------------------
def start_vm(f, vm, owner, cmdlet="Start-SCVirtualMachine"):
    ensure_free(f, vm, "virtual machine", vm.name)
    if vm.status == "Running":
        raise VmmFailure(E.E_STATE, f"The virtual machine {vm.name} is already running.",
                         "No action is needed.")
    if vm.status == "Paused":
        raise VmmFailure(E.E_STATE, f"The virtual machine {vm.name} is paused and cannot be started.",
                         "Resume the virtual machine instead.")
    host = _host(f, vm)
    if host.maintenance:
        raise VmmFailure(E.E_MAINTENANCE, f"Unable to start virtual machine {vm.name} because host {host.name} "
                         "is in maintenance mode.", "Take the host out of maintenance mode or move the "
                         "virtual machine to another host.")
    free = f.free_mb(host)
    if free < vm.memory_mb:
        raise VmmFailure(E.E_MEMORY, f"Unable to start virtual machine {vm.name} because host {host.name} does "
                         f"not have enough memory: {free} MB available, {vm.memory_mb} MB required.",
                         "Stop other virtual machines on the host or move the virtual machine to another host.")

    def done():
        vm.status, vm.transient, vm.modified = "Running", None, utcnow()
    steps = [Step(f.duration("start"), done, _transient(vm, "Starting"), "Start virtual machine")]
    job = _submit(f, "Start virtual machine", cmdlet, owner, steps, [vm.id], [vm.name, host.name],
                  (vm.name, vm.id, "VM"), _clear(vm))
    vm.most_recent_job = job.id
    return job


def stop_vm(f, vm, owner, mode="off", cmdlet="Stop-SCVirtualMachine"):
    ensure_free(f, vm, "virtual machine", vm.name)
    if vm.status == "PowerOff":
        raise VmmFailure(E.E_STATE, f"The virtual machine {vm.name} is already stopped.", "No action is needed.")
    if mode == "save" and vm.status not in USES_MEMORY:
        raise VmmFailure(E.E_STATE, f"The virtual machine {vm.name} cannot be saved because it is in the "
                         f"{vm.status} state.", "Start the virtual machine first.")
    if mode == "shutdown" and vm.status != "Running":
        raise VmmFailure(E.E_STATE, f"The operating system of virtual machine {vm.name} cannot be shut down "
                         f"because the virtual machine is in the {vm.status} state.",
                         "Use Stop-SCVirtualMachine without -Shutdown to turn it off.")
    final, transient, kind, name = {
        "save": ("Saved", "Saving", "save", "Save state virtual machine"),
        "shutdown": ("PowerOff", "PoweringOff", "shutdown", "Shut down virtual machine"),
    }.get(mode, ("PowerOff", "PoweringOff", "stop", "Stop virtual machine"))

    def done():
        vm.status, vm.transient, vm.modified = final, None, utcnow()
    steps = [Step(f.duration(kind), done, _transient(vm, transient), name)]
    job = _submit(f, name, cmdlet, owner, steps, [vm.id], [vm.name, _host(f, vm).name],
                  (vm.name, vm.id, "VM"), _clear(vm))
    vm.most_recent_job = job.id
    return job


def set_vm(f, vm, owner, changes: dict, cmdlet="Set-SCVirtualMachine"):
    ensure_free(f, vm, "virtual machine", vm.name)

    def done():
        for key, value in changes.items():
            if key.startswith("Custom") and key[6:].isdigit():
                vm.custom[int(key[6:]) - 1] = "" if value is None else str(value)
            elif key == "Description":
                vm.description = str(value or "")
            elif key == "Owner":
                vm.owner = str(value or "")
            elif key == "UserRole":
                vm.user_role_id = value
            elif key == "CustomProperty":
                vm.custom_properties.update(value)
        vm.modified = utcnow()
    steps = [Step(f.duration("set_vm"), done, None, "Change properties of virtual machine")]
    job = _submit(f, "Change properties of virtual machine", cmdlet, owner, steps, [vm.id], [vm.name],
                  (vm.name, vm.id, "VM"))
    vm.most_recent_job = job.id
    return job


def move_vm(f, vm, target, owner, cmdlet="Move-SCVirtualMachine"):
    ensure_free(f, vm, "virtual machine", vm.name)
    source = _host(f, vm)
    if target.id == source.id:
        raise VmmFailure(E.E_SAME_HOST, f"The virtual machine {vm.name} is already on host {target.name}.",
                         "Select a different destination host.")
    _check_target(f, vm, target)
    live = vm.status in USES_MEMORY

    def done():
        _check_target(f, vm, target)
        f.move_vm(vm, target)
        vm.transient, vm.migrating = None, False
    steps = [Step(f.duration("live_migration" if live else "migration"), done,
                  _transient(vm, "UnderMigration", live), "Migrate virtual machine")]
    job = _submit(f, "Migrate virtual machine", cmdlet, owner, steps, [vm.id], [vm.name, target.name],
                  (vm.name, vm.id, "VM"), _clear(vm))
    vm.most_recent_job = job.id
    return job


def _check_target(f, vm, target):
    if target.maintenance:
        raise VmmFailure(E.E_MAINTENANCE, f"Unable to place virtual machine {vm.name} on host {target.name} "
                         "because the host is in maintenance mode.", "Select a host that is not in maintenance mode.")
    if vm.status in USES_MEMORY and f.free_mb(target) < vm.memory_mb:
        raise VmmFailure(E.E_MEMORY, f"Unable to migrate virtual machine {vm.name} to host {target.name}: the host "
                         f"has {f.free_mb(target)} MB of memory available and the virtual machine needs "
                         f"{vm.memory_mb} MB.", "Select a host with more available memory.")


# ---- checkpoints -------------------------------------------------------------------------
def new_checkpoint(f, vm, owner, name=None, description="", cmdlet="New-SCVMCheckpoint"):
    ensure_free(f, vm, "virtual machine", vm.name)
    cp_id = uuid.uuid4()
    now = utcnow()
    name = name or f"{vm.name} - ({now:%m/%d/%Y - %I:%M:%S %p})"

    def done():
        cp = Checkpoint(cp_id, vm.id, name, description or "", utcnow(), vm.current_checkpoint, vm.status)
        cp.most_recent_job = box[0].id
        f.add_checkpoint(cp)
        vm.current_checkpoint = cp.id
        vm.transient = None
    box = []
    steps = [Step(f.duration("checkpoint"), done, _transient(vm, "CreatingCheckpoint"), "Create checkpoint")]
    job = _submit(f, "Create virtual machine checkpoint", cmdlet, owner, steps, [vm.id], [vm.name],
                  (name, cp_id, "VMCheckpoint"), _clear(vm), box)
    vm.most_recent_job = job.id
    return job, cp_id, name


def restore_checkpoint(f, cp, owner, cmdlet="Restore-SCVMCheckpoint"):
    vm = f.vms[cp.vm_id]
    ensure_free(f, vm, "virtual machine", vm.name)
    ensure_free(f, cp, "checkpoint", cp.name)
    if cp.vm_status in USES_MEMORY and not vm.uses_memory:
        host = _host(f, vm)
        if f.free_mb(host) < vm.memory_mb:
            raise VmmFailure(E.E_MEMORY, f"Unable to restore checkpoint {cp.name} of virtual machine {vm.name}: "
                             f"host {host.name} does not have {vm.memory_mb} MB of memory available.")

    def done():
        vm.status, vm.transient = cp.vm_status, None
        vm.current_checkpoint = cp.id
        vm.last_restored = cp.id
        vm.modified = utcnow()
    steps = [Step(f.duration("restore"), done, _transient(vm, "RecoveringCheckpoint"), "Restore checkpoint")]
    job = _submit(f, "Restore virtual machine checkpoint", cmdlet, owner, steps, [vm.id, cp.id],
                  [vm.name, cp.name], (cp.name, cp.id, "VMCheckpoint"), _clear(vm))
    vm.most_recent_job = cp.most_recent_job = job.id
    return job


def remove_checkpoint(f, cp, owner, cmdlet="Remove-SCVMCheckpoint"):
    vm = f.vms[cp.vm_id]
    ensure_free(f, vm, "virtual machine", vm.name)
    ensure_free(f, cp, "checkpoint", cp.name)

    def done():
        for other in f.checkpoints.values():
            if other.parent_id == cp.id:
                other.parent_id = cp.parent_id
        f.remove_checkpoint(cp.id)
        if vm.current_checkpoint == cp.id:
            vm.current_checkpoint = cp.parent_id
        if vm.last_restored == cp.id:
            vm.last_restored = None
        vm.transient = None
    steps = [Step(f.duration("remove_checkpoint"), done, _transient(vm, "MergingDrives"), "Merge checkpoint")]
    job = _submit(f, "Remove virtual machine checkpoint", cmdlet, owner, steps, [vm.id, cp.id],
                  [vm.name, cp.name], (cp.name, cp.id, "VMCheckpoint"), _clear(vm))
    vm.most_recent_job = cp.most_recent_job = job.id
    return job


# ---- hosts -------------------------------------------------------------------------------
def disable_host(f, host, owner, move=False, cmdlet="Disable-SCVMHost"):
    ensure_free(f, host, "host", host.name)
    if host.maintenance:
        raise VmmFailure(E.E_ALREADY_MAINT, f"Host {host.name} is already in maintenance mode.",
                         "No action is needed.")
    if move and host.cluster_id is None:
        raise VmmFailure(E.E_NOT_CLUSTERED, f"Unable to migrate the virtual machines on host {host.name} to other "
                         "cluster nodes because the host is not a node of a host cluster.",
                         "Run Disable-SCVMHost without -MoveWithinCluster; running virtual machines will be "
                         "placed in a saved state.")
    running = [v for v in f.vms_on(host.id) if v.status in USES_MEMORY]
    for vm in running:
        ensure_free(f, vm, "virtual machine", vm.name)

    def enter():
        host.maintenance = True
    steps = [Step(f.duration("host_maintenance"), None, enter, "Start maintenance mode")]
    job_box = []
    for vm in running:
        migrate = move and vm.ha
        steps.append(Step(f.duration("live_migration" if migrate else "save"), _evacuate(f, vm, host, migrate, job_box),
                          _transient(vm, "UnderMigration" if migrate else "Saving", migrate),
                          f"{'Live migrate' if migrate else 'Save state'} {vm.name}"))

    def undo():
        host.maintenance = False
        _clear(*running)()
    job = _submit(f, "Start maintenance mode", cmdlet, owner, steps, [host.id] + [v.id for v in running],
                  [host.name], (host.name, host.id, "Host"), undo, job_box)
    host.most_recent_job = job.id
    for vm in running:
        vm.most_recent_job = job.id
    return job


def _evacuate(f, vm, host, migrate, job_box):
    def apply():
        vm.transient, vm.migrating = None, False
        if migrate:
            nodes = [n for n in f.nodes(host.cluster_id) if n.id != host.id and not n.maintenance]
            fits = [n for n in nodes if f.free_mb(n) >= vm.memory_mb]
            if fits:
                target = max(fits, key=f.free_mb)
                f.move_vm(vm, target)
                return
            job_box[0].infos.append((E.E_NO_TARGET, f"Virtual machine {vm.name} could not be live migrated because "
                                     "no other node of the cluster has enough available memory; it was placed "
                                     "in a saved state."))
        vm.status, vm.modified = "Saved", utcnow()
    return apply


def enable_host(f, host, owner, cmdlet="Enable-SCVMHost"):
    ensure_free(f, host, "host", host.name)

    def done():
        host.maintenance = False
    steps = [Step(f.duration("enable_host"), done, None, "Stop maintenance mode")]
    job = _submit(f, "Stop maintenance mode", cmdlet, owner, steps, [host.id], [host.name],
                  (host.name, host.id, "Host"))
    host.most_recent_job = job.id
    return job
