"""VMM cmdlets.

Long cmdlets (Start/Stop/Set/Move-SCVirtualMachine, New/Restore/Remove-SCVMCheckpoint,
Disable/Enable-SCVMHost, Add/Remove-SCUserRolePermission) start a job. With
``-RunAsynchronously`` they return at once the affected object, whose
``MostRecentTaskID`` is the job's ID (``-JobVariable name`` also sets ``$name`` to the
job); ``Get-SCJob -ID`` then shows it. Without it they write progress records, wait for
the job and return the object, or raise the job's error (VMM error text with
``(Error ID: N)``). A job that ends SucceedWithInfo writes its message as a warning.
Validation failures (state, memory, maintenance, locked by a job) are terminating errors
raised before any job starts.
"""
from __future__ import annotations

import fnmatch

from .. import access
from .. import errors as E
from .. import operations as ops
from ..errors import VmmFailure
from ..fabric import Checkpoint
from ..jobs import utcnow
from . import objects as O
from .base import P, cmdlet

JOBC = dict(vmm=True, job=True)


def _match(name: str, pattern: str) -> bool:
    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(name.lower(), pattern.lower())
    return name.lower() == pattern.lower()


def _run(ctx, fn, *args, **kw):
    with ctx.f.lock:
        ctx.f.advance()
        try:
            return fn(ctx.f, *args, **kw)
        except VmmFailure as failure:
            raise failure.to_pserror(ctx.name)


# ---- reads -------------------------------------------------------------------------------
@cmdlet("Get-SCVMMServer", [P("ComputerName", position=0), P("Credential", "any"), P("TCPPort", "int"),
                            P("ForOnBehalfOf", "switch"), P("SetAsDefault", "switch")])
def get_server(ctx, a):
    name = a.get("ComputerName") or ctx.f.vmm_server
    ctx.fault_now([name])
    ok = {ctx.f.vmm_server.lower(), ctx.f.vmm_server.split(".")[0].lower(), "localhost", "127.0.0.1"}
    if name.lower() not in ok:
        raise E.vmm_error(E.E_CONNECT, f"You cannot contact the VMM management server {name}. The VMM management "
                          "server may be offline or the name may be wrong.", ctx.name, category="ResourceUnavailable")
    with ctx.f.lock:
        return [O.server_obj(ctx.f, ctx.user)]


@cmdlet("Get-SCCloud", [P("Name", position=0), P("ID", "guid")], vmm=True)
def get_cloud(ctx, a):
    ctx.fault_now([a.get("Name") or ""])
    with ctx.f.lock:
        clouds = sorted(ctx.f.clouds.values(), key=lambda c: c.name.lower())
        if a.get("ID"):
            clouds = [c for c in clouds if c.id == a["ID"]]
        if a.get("Name"):
            clouds = [c for c in clouds if _match(c.name, a["Name"])]
        return [O.cloud_obj(ctx.f, c) for c in clouds]


@cmdlet("Get-SCVMHostCluster", [P("Name", position=0), P("ID", "guid")], vmm=True)
def get_cluster(ctx, a):
    ctx.fault_now([a.get("Name") or ""])
    with ctx.f.lock:
        cl = sorted(ctx.f.clusters.values(), key=lambda c: c.name.lower())
        if a.get("ID"):
            cl = [c for c in cl if c.id == a["ID"]]
        if a.get("Name"):
            n = a["Name"]
            cl = [c for c in cl if _match(c.name, n) or c.name.split(".")[0].lower() == n.split(".")[0].lower()]
        return [O.cluster_obj(ctx.f, c) for c in cl]


@cmdlet("Get-SCVMHost", [P("ComputerName", position=0), P("ID", "guid"),
                         P("VMHostCluster", "cluster", pipeline=True)], vmm=True)
def get_host(ctx, a):
    ctx.fault_now([a.get("ComputerName") or ""])
    f = ctx.f
    with f.lock:
        f.advance()
        hosts = sorted(f.hosts.values(), key=lambda h: h.name.lower())
        if a.get("ID"):
            hosts = [h for h in hosts if h.id == a["ID"]]
        if a.get("ComputerName"):
            n = a["ComputerName"]
            hosts = [h for h in hosts if f.host_matches(h, n) or ("*" in n and _match(h.name, n))]
        if a.get("VMHostCluster") is not None:
            hosts = [h for h in hosts if h.cluster_id == a["VMHostCluster"].id]
        return [O.host_obj(f, h) for h in hosts]


@cmdlet("Get-SCVirtualMachine", [P("Name", position=0), P("ID", "guid"), P("All", "switch"),
                                 P("VMHost", "host", pipeline=True), P("Cloud", "cloud")], vmm=True)
def get_vm(ctx, a):
    ctx.fault_now([a.get("Name") or ""])
    f = ctx.f
    with f.lock:
        f.advance()
        if a.get("ID"):
            vm = f.vms.get(a["ID"])
            vms = [vm] if vm else []
        elif a.get("VMHost") is not None:
            vms = f.vms_on(a["VMHost"].id)
        else:
            vms = sorted(f.vms.values(), key=lambda v: v.name.lower())
        if a.get("Name"):
            vms = [v for v in vms if _match(v.name, a["Name"])]
        if a.get("Cloud") is not None:
            vms = [v for v in vms if v.cloud_id == a["Cloud"].id]
        return [O.vm_obj(f, v) for v in ctx.visible(vms)]


@cmdlet("Get-SCVMCheckpoint", [P("VM", "vm", pipeline=True, position=0), P("ID", "guid"),
                               P("MostRecent", "switch")], vmm=True)
def get_checkpoint(ctx, a):
    f = ctx.f
    with f.lock:
        f.advance()
        vm = a.get("VM")
        ctx.fault_now([vm.name if vm else ""])
        if vm is not None:
            ctx.allow(vm)
            cps = f.checkpoints_of(vm.id)
        else:
            cps = sorted(f.checkpoints.values(), key=lambda c: c.added)
            if ctx.acting is not None:
                seen = {v.id for v in ctx.visible(f.vms.values())}
                cps = [c for c in cps if c.vm_id in seen]
        if a.get("ID"):
            cps = [c for c in cps if c.id == a["ID"]]
        if a.get("MostRecent"):
            latest = {}
            for c in cps:
                latest[c.vm_id] = c
            cps = list(latest.values())
        return [O.checkpoint_obj(f, c) for c in cps]


@cmdlet("Get-SCJob", [P("ID", "guid"), P("All", "switch"), P("Running", "switch"), P("Newest", "int"),
                      P("Job", "job", pipeline=True)], vmm=True)
def get_job(ctx, a):
    f = ctx.f
    with f.lock:
        f.advance()
        if a.get("Job") is not None:
            jobs = [a["Job"]]
        elif a.get("ID"):
            jobs = [f.jobs.jobs[a["ID"]]] if a["ID"] in f.jobs.jobs else []
        elif a.get("Running"):
            jobs = f.jobs.running()
        else:
            jobs = [f.jobs.jobs[i] for i in f.jobs.order]
        if a.get("ID"):
            jobs = [j for j in jobs if j.id == a["ID"]]
        if a.get("Running"):
            jobs = [j for j in jobs if not j.done]
        if ctx.acting is not None:   # a tenant sees the jobs run on their behalf
            jobs = [j for j in jobs if j.owner.lower() == ctx.acting.user.lower()]
        if a.get("Newest"):
            jobs = jobs[-a["Newest"]:]
        return [O.job_obj(f, j) for j in jobs]


# ---- VM actions --------------------------------------------------------------------------
def _vm_result(ctx, vm):
    return lambda: O.vm_obj(ctx.f, vm)


@cmdlet("Start-SCVirtualMachine", [P("VM", "vm", mandatory=True, pipeline=True, position=0)], **JOBC)
def start_vm(ctx, a):
    vm = a["VM"]
    ctx.allow(vm, ("Start",))
    job = _run(ctx, ops.start_vm, vm, ctx.user, ctx.name)
    return ctx.job_result(job, _vm_result(ctx, vm))


@cmdlet("Stop-SCVirtualMachine", [P("VM", "vm", mandatory=True, pipeline=True, position=0),
                                  P("Shutdown", "switch"), P("SaveState", "switch"), P("Force", "switch")], **JOBC)
def stop_vm(ctx, a):
    vm = a["VM"]
    mode = "save" if a.get("SaveState") else "shutdown" if a.get("Shutdown") else "off"
    ctx.allow(vm, access.STOP_MODES[mode])
    job = _run(ctx, ops.stop_vm, vm, ctx.user, mode, ctx.name)
    return ctx.job_result(job, _vm_result(ctx, vm))


_CUSTOM = [P(f"Custom{i}") for i in range(1, 11)]


@cmdlet("Set-SCVirtualMachine", [P("VM", "vm", mandatory=True, pipeline=True, position=0), *_CUSTOM,
                                 P("Description"), P("Owner"), P("UserRole", "role"), P("CustomProperty", "any")],
        **JOBC)
def set_vm(ctx, a):
    vm = a["VM"]
    ctx.allow(vm)
    if "UserRole" in a:
        ctx.admin_only()   # a tenant cannot hand a VM to another role
    changes = {k: v for k, v in a.items() if k.startswith("Custom") and k != "CustomProperty" or k in ("Description", "Owner")}
    if "UserRole" in a:
        changes["UserRole"] = a["UserRole"].id if a["UserRole"] is not None else None
    with ctx.f.lock:
        role = a["UserRole"] if "UserRole" in a else ctx.f.roles.get(vm.user_role_id)
        owner = a.get("Owner")
        if owner and role is not None and owner.lower() not in (m.lower() for m in role.members):
            raise E.vmm_error(E.E_ROLE, f"The owner {owner} is not a member of the user role {role.name}. Specify "
                              "an owner who is a member of the user role.", ctx.name, category="InvalidArgument")
    if isinstance(a.get("CustomProperty"), dict):
        changes["CustomProperty"] = {str(k): str(v) for k, v in a["CustomProperty"].items()}
    job = _run(ctx, ops.set_vm, vm, ctx.user, changes, ctx.name)
    return ctx.job_result(job, _vm_result(ctx, vm))


@cmdlet("Move-SCVirtualMachine", [P("VM", "vm", mandatory=True, pipeline=True, position=0),
                                  P("VMHost", "host", mandatory=True), P("Path"), P("UseCluster", "switch"),
                                  P("UseLAN", "switch"), P("BlockLiveMigrationIfHostBusy", "switch")], **JOBC)
def move_vm(ctx, a):
    vm = a["VM"]
    ctx.admin_only()
    job = _run(ctx, ops.move_vm, vm, a["VMHost"], ctx.user, ctx.name)
    return ctx.job_result(job, _vm_result(ctx, vm))


# ---- checkpoints -------------------------------------------------------------------------
@cmdlet("New-SCVMCheckpoint", [P("VM", "vm", mandatory=True, pipeline=True, position=0), P("Name"),
                               P("Description")], **JOBC)
def new_checkpoint(ctx, a):
    vm = a["VM"]
    ctx.allow(vm, access.CHECKPOINT)
    job, cp_id, name = _run(ctx, ops.new_checkpoint, vm, ctx.user, a.get("Name"), a.get("Description") or "",
                            ctx.name)
    pending = Checkpoint(cp_id, vm.id, name, a.get("Description") or "", job.start_time, vm.current_checkpoint,
                         vm.status, job.id)

    def result():
        cp = ctx.f.checkpoints.get(cp_id)
        return O.checkpoint_obj(ctx.f, cp or pending)
    return ctx.job_result(job, result)


def _cp_job(ctx, a, fn, allowed):
    cp = a["VMCheckpoint"]
    with ctx.f.lock:
        if cp.id not in ctx.f.checkpoints:
            raise E.vmm_error(E.E_NOT_FOUND, f"Unable to find the checkpoint {cp.name}. The object may have been "
                              "deleted.", ctx.name, category="ObjectNotFound")
        ctx.allow(ctx.f.vms[cp.vm_id], allowed)
        snapshot = O.checkpoint_obj(ctx.f, cp)
    job = _run(ctx, fn, cp, ctx.user, ctx.name)

    def result():
        live = ctx.f.checkpoints.get(cp.id)
        if live is not None:
            return O.checkpoint_obj(ctx.f, live)
        snapshot.properties["MostRecentTaskID"] = job.id
        snapshot.properties["MostRecentTask"] = job.name
        return snapshot
    return ctx.job_result(job, result)


@cmdlet("Restore-SCVMCheckpoint", [P("VMCheckpoint", "checkpoint", mandatory=True, pipeline=True, position=0)],
        **JOBC)
def restore_checkpoint(ctx, a):
    return _cp_job(ctx, a, ops.restore_checkpoint, access.RESTORE)


@cmdlet("Remove-SCVMCheckpoint", [P("VMCheckpoint", "checkpoint", mandatory=True, pipeline=True, position=0),
                                  P("Force", "switch")], **JOBC)
def remove_checkpoint(ctx, a):
    return _cp_job(ctx, a, ops.remove_checkpoint, access.CHECKPOINT)


# ---- hosts -------------------------------------------------------------------------------
@cmdlet("Disable-SCVMHost", [P("VMHost", "host", mandatory=True, pipeline=True, position=0),
                             P("MoveWithinCluster", "switch")], **JOBC)
def disable_host(ctx, a):
    host = a["VMHost"]
    ctx.admin_only()
    job = _run(ctx, ops.disable_host, host, ctx.user, bool(a.get("MoveWithinCluster")), ctx.name)
    return ctx.job_result(job, lambda: O.host_obj(ctx.f, host))


@cmdlet("Enable-SCVMHost", [P("VMHost", "host", mandatory=True, pipeline=True, position=0)], **JOBC)
def enable_host(ctx, a):
    host = a["VMHost"]
    ctx.admin_only()
    job = _run(ctx, ops.enable_host, host, ctx.user, ctx.name)
    return ctx.job_result(job, lambda: O.host_obj(ctx.f, host))


_ = utcnow
