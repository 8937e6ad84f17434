"""Typed VMM calls. Each sends structured commands, asks only for the fields it
needs (Select-Object | ConvertTo-Json) and returns dataclasses.

Long operations run with ``-RunAsynchronously -JobVariable`` and return the
VMM job (``JobInfo``); ``wait_job`` polls ``Get-SCJob`` and reports progress.
"""
from __future__ import annotations

import time
import typing
import uuid

from . import errors
from .behalf import ACTION_SCRIPTS, ALL_CHECKPOINTS_SCRIPT, GET_VM_SCRIPT, VM_CHECKPOINTS_SCRIPT, OnBehalfOf
from .commands import SWITCH, Cmd, check_literal_name, cmd, enum_text, parse_date, parse_json_output, script, select_json
from .session import FabricSession
from .types import CheckpointInfo, CloudInfo, ClusterInfo, HostInfo, JobInfo, UserRoleInfo, VMInfo

VM_FIELDS = ("ID", "Name", "Status", "HostName", "Cloud", "IsHighlyAvailable", "Memory", "Owner", "UserRoleID", "UserRole",
             "CustomProperty", *(f"Custom{i}" for i in range(1, 11)))
HOST_FIELDS = ("ID", "Name", "HostCluster", "OverallState", "CommunicationState", "MaintenanceHost",
               "TotalMemory", "AvailableMemory")
# VMId, not VM: the nested VM reference would serialize the whole VM with every checkpoint
CHECKPOINT_FIELDS = ("ID", "Name", "Description", "AddedTime", "VMId")
JOB_FIELDS = ("ID", "Name", "StatusString", "ProgressValue", "ErrorInfo", "ResultName")
JOB_VARIABLE = "SlipwayJob"

# Integer values of VMM's enums, as Windows PowerShell 5.1's ConvertTo-Json writes them.
VM_STATES = {0: "Running", 1: "PowerOff", 2: "PoweringOff", 3: "Saved", 4: "Saving", 5: "Restoring", 6: "Paused",
             10: "DiscardSavedState", 11: "Starting", 12: "MergingDrives", 13: "Deleting", 80: "DiscardingDrives",
             81: "Pausing", 100: "UnderCreation", 101: "CreationFailed", 102: "Stored", 106: "UnderUpdate",
             107: "UpdateFailed", 200: "UnderMigration", 201: "MigrationFailed", 210: "CreatingCheckpoint",
             211: "DeletingCheckpoint", 212: "RecoveringCheckpoint", 213: "CheckpointFailed", 220: "Missing",
             221: "HostNotResponding", 222: "Unsupported"}
HOST_OVERALL_STATES = {0: "OK", 1: "NeedsAttention"}
COMMUNICATION_STATES = {0: "Unknown", 1: "Responding", 2: "NotResponding", 3: "AccessDenied"}


def _ref_name(value) -> str:
    """A nested object at the JSON depth limit: its ToString (a name), or a dict with Name."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("Name") or value.get("ComputerName") or "")
    return str(value)


def _str(value) -> str:
    return "" if value is None else str(value)


def _vm(d: dict) -> VMInfo:
    custom = {}
    props = d.get("CustomProperty")
    if isinstance(props, dict):
        custom.update({str(k): _str(v) for k, v in props.items() if v not in (None, "")})
    for i in range(1, 11):
        value = d.get(f"Custom{i}")
        if value not in (None, ""):
            custom[f"Custom{i}"] = str(value)
    return VMInfo(
        id=_str(d.get("ID")),
        name=_str(d.get("Name")),
        status=enum_text(d.get("Status"), VM_STATES),
        host_name=_ref_name(d.get("HostName")),
        cloud_name=_ref_name(d.get("Cloud")),
        is_highly_available=bool(d.get("IsHighlyAvailable")),
        memory_mb=int(d.get("Memory") or 0),
        owner=_ref_name(d.get("Owner")),
        custom=custom,
        user_role_id=_str(d.get("UserRoleID")),
        user_role_name=_ref_name(d.get("UserRole")),
    )


def _checkpoint(d: dict) -> CheckpointInfo:
    return CheckpointInfo(
        id=_str(d.get("ID")),
        vm_id=_str(d.get("VMId")),
        name=_str(d.get("Name")),
        description=_str(d.get("Description")),
        added_at=parse_date(d.get("AddedTime")),
    )


def _job(d: dict) -> JobInfo:
    info = d.get("ErrorInfo")
    error = ""
    if isinstance(info, dict):
        code = info.get("DisplayableErrorCode") or info.get("Code")
        problem = info.get("Problem") or ""
        if problem or (code not in (None, 0, "0", "Success")):
            error = problem or f"error code {code}"
    elif info and str(info) not in ("Success (0)", "Success"):
        error = str(info)
    return JobInfo(
        id=_str(d.get("ID")),
        name=_str(d.get("Name")),
        status=str(d.get("StatusString") or ""),
        progress=int(d.get("ProgressValue") or 0),
        error=error,
        target=_str(d.get("ResultName")),
    )


def _query(s: FabricSession, pipeline: list[Cmd], fields, *, cmdlet: str, target: str = "", depth: int = 2,
           timeout: float | None = None) -> list[dict]:
    result = s.run([pipeline + select_json(*fields, depth=depth)], cmdlet=cmdlet, target=target, timeout=timeout)
    return parse_json_output(result.output)


# -- inventory ------------------------------------------------------------------
def list_clouds(s: FabricSession) -> list[CloudInfo]:
    rows = _query(s, [cmd("Get-SCCloud")], ("ID", "Name", "Description"), cmdlet="Get-SCCloud")
    return [CloudInfo(_str(r.get("ID")), _str(r.get("Name")), _str(r.get("Description"))) for r in rows]


def list_clusters(s: FabricSession) -> list[ClusterInfo]:
    rows = _query(s, [cmd("Get-SCVMHostCluster")], ("ID", "Name"), cmdlet="Get-SCVMHostCluster")
    return [ClusterInfo(_str(r.get("ID")), _str(r.get("Name"))) for r in rows]


def list_hosts(s: FabricSession) -> list[HostInfo]:
    rows = _query(s, [cmd("Get-SCVMHost")], HOST_FIELDS, cmdlet="Get-SCVMHost")
    return [
        HostInfo(
            id=_str(r.get("ID")),
            name=_str(r.get("Name")),
            cluster_name=_ref_name(r.get("HostCluster")),
            overall_state=enum_text(r.get("OverallState"), HOST_OVERALL_STATES),
            communication_state=enum_text(r.get("CommunicationState"), COMMUNICATION_STATES),
            in_maintenance=bool(r.get("MaintenanceHost")),
            total_memory_mb=int(r.get("TotalMemory") or 0) // (1024 * 1024),
            available_memory_mb=int(r.get("AvailableMemory") or 0),
        )
        for r in rows
    ]


def list_vms(s: FabricSession, timeout: float | None = None) -> list[VMInfo]:
    rows = _query(s, [cmd("Get-SCVirtualMachine", All=True)], VM_FIELDS, cmdlet="Get-SCVirtualMachine", timeout=timeout)
    return [_vm(r) for r in rows]


def get_vm(s: FabricSession, vm_id: str, on_behalf_of=None) -> VMInfo:
    """One VM; ``on_behalf_of`` (user, role ID): only a VM in that role's scope is found."""
    who = OnBehalfOf.of(on_behalf_of)
    first = script(GET_VM_SCRIPT, VMID=vm_id, **who.params()) if who else cmd("Get-SCVirtualMachine", ID=vm_id)
    rows = _query(s, [first], VM_FIELDS, cmdlet="Get-SCVirtualMachine", target=vm_id)
    if not rows:
        raise errors.NotFound(s.settings.name, f"no virtual machine has the ID {vm_id}", cmdlet="Get-SCVirtualMachine",
                              target=vm_id, kind=s.settings.kind)
    return _vm(rows[0])


def find_vms(s: FabricSession, custom_property: str = "Custom1", value: str = "", cloud_name: str | None = None) -> list[VMInfo]:
    """VMs whose custom property equals ``value`` (compared as text), optionally in one cloud."""
    return in_batch(list_vms(s), custom_property, value, cloud_name)


def in_batch(vms: list[VMInfo], custom_property: str, value: str, cloud_name: str | None = None) -> list[VMInfo]:
    wanted = str(value).strip()
    found = [vm for vm in vms if vm.custom.get(custom_property, "").strip() == wanted]
    if cloud_name:
        found = [vm for vm in found if vm.cloud_name.lower() == cloud_name.lower()]
    return found


def list_checkpoints(s: FabricSession, vm_id: str | None = None, on_behalf_of=None) -> list[CheckpointInfo]:
    who = OnBehalfOf.of(on_behalf_of)
    if who:
        pipeline = [script(VM_CHECKPOINTS_SCRIPT, VMID=vm_id, **who.params()) if vm_id
                    else script(ALL_CHECKPOINTS_SCRIPT, **who.params())]
    elif vm_id:
        pipeline = [cmd("Get-SCVirtualMachine", ID=vm_id), cmd("Get-SCVMCheckpoint")]
    else:
        pipeline = [cmd("Get-SCVMCheckpoint")]
    rows = _query(s, pipeline, CHECKPOINT_FIELDS, cmdlet="Get-SCVMCheckpoint", target=vm_id or "")
    return [_checkpoint(r) for r in rows]


def list_user_roles(s: FabricSession) -> list[UserRoleInfo]:
    rows = _query(s, [cmd("Get-SCUserRole")], ("ID", "Name", "Profile", "Permission"), cmdlet="Get-SCUserRole")
    out = []
    for r in rows:
        perms = r.get("Permission") or []
        if not isinstance(perms, list):
            perms = [perms]
        out.append(UserRoleInfo(_str(r.get("ID")), _str(r.get("Name")), enum_text(r.get("Profile")), [str(p) for p in perms]))
    return out


# -- jobs -------------------------------------------------------------------------
def _job_variable() -> str:
    """A fresh variable per call, so a pooled runspace can never hand back an older job."""
    return f"{JOB_VARIABLE}_{uuid.uuid4().hex}"


def _read_job(s: FabricSession, statements, variable: str, *, cmdlet: str, target: str) -> JobInfo:
    statements = [*statements, [cmd("Get-Variable", Name=variable, ValueOnly=True), *select_json(*JOB_FIELDS)]]
    result = s.run(statements, cmdlet=cmdlet, target=target, strict=False)
    rows = parse_json_output(result.output)
    if result.errors and not rows:
        first = s._command_error(result.errors[0], cmdlet, target)
        if variable in first.message:
            # the object to act on was not found, so nothing started and no job exists
            raise errors.NotFound(s.settings.name, f"{target} was not found on the server; nothing was started",
                                  cmdlet=cmdlet, target=target, kind=s.settings.kind)
        raise first
    if result.errors:
        raise s._command_error(result.errors[0], cmdlet, target)
    if not rows:
        raise errors.FabricCommandError(s.settings.name, "the server returned no job", cmdlet=cmdlet, target=target,
                                        kind=s.settings.kind)
    job = _job(rows[0])
    job.target = target
    return job


def _act(s: FabricSession, who: OnBehalfOf, op: str, target_id: str, *, cmdlet: str, target: str, name: str = "",
         description: str = "") -> JobInfo:
    """A long cmdlet run on behalf of a tenant (ops/fabric/behalf.py); returns its job."""
    variable = _job_variable()
    try:
        return _read_job(s, [[script(ACTION_SCRIPTS[op], TargetID=target_id, JobVariable=variable, Name=name,
                                     Description=description, **who.params())]], variable, cmdlet=cmdlet, target=target)
    except errors.FabricCommandError as exc:
        if exc.error_id.startswith("ParameterArgumentValidationErrorNullNotAllowed"):   # $vm / $cp came back empty
            raise errors.NotFound(s.settings.name, f"{target} was not found on the server; nothing was started",
                                  cmdlet=cmdlet, target=target, kind=s.settings.kind) from exc
        raise


def _run_job(s: FabricSession, pipeline: list[Cmd], *, cmdlet: str, target: str) -> JobInfo:
    """Run a long cmdlet asynchronously; return its job."""
    variable = _job_variable()
    pipeline = list(pipeline)
    last = pipeline[-1]
    pipeline[-1] = Cmd(last.name, [*last.params, ("RunAsynchronously", SWITCH), ("JobVariable", variable)], last.script)
    return _read_job(s, [pipeline + [cmd("Out-Null")]], variable, cmdlet=cmdlet, target=target)


def get_job(s: FabricSession, job_id: str) -> JobInfo:
    rows = _query(s, [cmd("Get-SCJob", ID=job_id)], JOB_FIELDS, cmdlet="Get-SCJob", target=job_id)
    if not rows:
        raise errors.NotFound(s.settings.name, f"no job has the ID {job_id}", cmdlet="Get-SCJob", target=job_id,
                              kind=s.settings.kind)
    return _job(rows[0])


def running_jobs(s: FabricSession, job_ids: typing.Iterable[str] | None = None) -> dict[str, JobInfo]:
    """The jobs still running (lower-case ID -> JobInfo), from one ``Get-SCJob -Running``;
    limited to ``job_ids`` when given."""
    result = s.run([[cmd("Get-SCJob", Running=True), *select_json(*JOB_FIELDS)]], cmdlet="Get-SCJob", target="running jobs")
    wanted = {j.lower() for j in job_ids} if job_ids is not None else None
    jobs = {}
    for row in parse_json_output(result.output):
        job = _job(row)
        if not job.finished and (wanted is None or job.id.lower() in wanted):
            jobs[job.id.lower()] = job
    return jobs


def jobs_by_id(s: FabricSession, job_ids: typing.Iterable[str]) -> dict[str, JobInfo]:
    """Jobs by ID, one statement each, one round trip; unknown IDs are left out."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return {}
    return each_by_id(s, "Get-SCJob", ids, JOB_FIELDS, _job, "jobs")


def each_by_id(s: FabricSession, cmdlet: str, ids: list[str], fields, parse, noun: str) -> dict:
    """``cmdlet -ID x | Select-Object fields | ConvertTo-Json`` for each ID, all in one round trip, parsed
    by ``parse``; keyed by lower-case ID. IDs the server does not know are left out."""
    statements = [[cmd(cmdlet, ID=i), *select_json(*fields)] for i in ids]
    result = s.run(statements, cmdlet=cmdlet, target=f"{len(ids)} {noun}", strict=False)
    found = {}
    for text in result.output:
        for row in parse_json_output([text]):
            obj = parse(row)
            found[obj.id.lower()] = obj
    return found


def get_jobs(s: FabricSession, job_ids: typing.Iterable[str]) -> dict[str, JobInfo]:
    """Several jobs (ID as given -> JobInfo): the running ones from one ``Get-SCJob -Running``,
    the others (ended: their status and error) one statement each. Unknown IDs are left out."""
    ids = [str(j) for j in job_ids]
    if not ids:
        return {}
    jobs = running_jobs(s, ids) if len(ids) > 3 else {}
    jobs.update(jobs_by_id(s, [j for j in ids if j.lower() not in jobs]))
    return {j: jobs[j.lower()] for j in ids if j.lower() in jobs}


def wait_job(s: FabricSession, job: JobInfo | str, timeout: float, on_progress: typing.Callable[[JobInfo], None] | None = None,
             poll: float = 0.25) -> JobInfo:
    job_id = job.id if isinstance(job, JobInfo) else str(job)
    target = job.target if isinstance(job, JobInfo) else ""
    name = job.name if isinstance(job, JobInfo) else "job"
    deadline = time.monotonic() + timeout
    last_progress = -1
    while True:
        current = get_job(s, job_id)
        if on_progress and current.progress != last_progress:
            on_progress(current)
            last_progress = current.progress
        if current.finished:
            if not current.succeeded:
                raise errors.JobFailed(s.settings.name, current.error or f"job {current.status.lower()}", job=current,
                                       cmdlet=current.name or name, target=target or current.target, kind=s.settings.kind)
            return current
        if time.monotonic() > deadline:
            raise errors.FabricTimeout(
                s.settings.name, f"job {job_id} still {current.status} at {current.progress}% after {timeout:.0f} s",
                cmdlet=current.name or name, target=target or current.target, kind=s.settings.kind)
        time.sleep(poll)


# -- VM actions --------------------------------------------------------------------
def _vm_pipe(vm_id: str) -> list[Cmd]:
    return [cmd("Get-SCVirtualMachine", ID=vm_id)]


def start_vm(s: FabricSession, vm_id: str, vm_name: str = "", on_behalf_of=None) -> JobInfo:
    if on_behalf_of:
        return _act(s, OnBehalfOf.of(on_behalf_of), "start", vm_id, cmdlet="Start-SCVirtualMachine", target=vm_name or vm_id)
    return _run_job(s, _vm_pipe(vm_id) + [cmd("Start-SCVirtualMachine")], cmdlet="Start-SCVirtualMachine", target=vm_name or vm_id)


STOP_METHODS = {"shutdown": "Shutdown", "turnoff": "Force", "save": "SaveState"}


def stop_vm(s: FabricSession, vm_id: str, method: str = "shutdown", vm_name: str = "", on_behalf_of=None) -> JobInfo:
    if method not in STOP_METHODS:
        raise ValueError(f"unknown stop method {method!r}; expected one of {', '.join(STOP_METHODS)}")
    if on_behalf_of:
        return _act(s, OnBehalfOf.of(on_behalf_of), method, vm_id, cmdlet="Stop-SCVirtualMachine", target=vm_name or vm_id)
    stop = Cmd("Stop-SCVirtualMachine", [(STOP_METHODS[method], SWITCH)])
    return _run_job(s, _vm_pipe(vm_id) + [stop], cmdlet="Stop-SCVirtualMachine", target=vm_name or vm_id)


def set_custom_property(s: FabricSession, vm_id: str, slot: int, value: str, vm_name: str = "") -> None:
    if not 1 <= int(slot) <= 10:
        raise ValueError("custom property slot must be 1..10")
    result = s.run([_vm_pipe(vm_id) + [Cmd("Set-SCVirtualMachine", [(f"Custom{int(slot)}", value)]), *select_json("ID")]],
                   cmdlet="Set-SCVirtualMachine", target=vm_name or vm_id)
    if not parse_json_output(result.output):  # Get-SCVirtualMachine found nothing, so nothing was set
        raise errors.NotFound(s.settings.name, f"no virtual machine has the ID {vm_id}; nothing was changed",
                              cmdlet="Set-SCVirtualMachine", target=vm_name or vm_id, kind=s.settings.kind)


def new_checkpoint(s: FabricSession, vm_id: str, name: str, description: str = "", vm_name: str = "",
                   on_behalf_of=None) -> JobInfo:
    if on_behalf_of:
        return _act(s, OnBehalfOf.of(on_behalf_of), "checkpoint", vm_id, cmdlet="New-SCVMCheckpoint",
                    target=vm_name or vm_id, name=name, description=description or "")
    return _run_job(s, _vm_pipe(vm_id) + [cmd("New-SCVMCheckpoint", Name=name, Description=description or "")],
                    cmdlet="New-SCVMCheckpoint", target=vm_name or vm_id)


def _checkpoint_pipe(checkpoint_id: str) -> list[Cmd]:
    return [cmd("Get-SCVMCheckpoint", ID=checkpoint_id)]


def remove_checkpoint(s: FabricSession, checkpoint_id: str, label: str = "", on_behalf_of=None) -> JobInfo:
    if on_behalf_of:
        return _act(s, OnBehalfOf.of(on_behalf_of), "remove_checkpoint", checkpoint_id, cmdlet="Remove-SCVMCheckpoint",
                    target=label or checkpoint_id)
    return _run_job(s, _checkpoint_pipe(checkpoint_id) + [cmd("Remove-SCVMCheckpoint")],
                    cmdlet="Remove-SCVMCheckpoint", target=label or checkpoint_id)


def restore_checkpoint(s: FabricSession, checkpoint_id: str, label: str = "", on_behalf_of=None) -> JobInfo:
    if on_behalf_of:
        return _act(s, OnBehalfOf.of(on_behalf_of), "restore", checkpoint_id, cmdlet="Restore-SCVMCheckpoint",
                    target=label or checkpoint_id)
    return _run_job(s, _checkpoint_pipe(checkpoint_id) + [cmd("Restore-SCVMCheckpoint")],
                    cmdlet="Restore-SCVMCheckpoint", target=label or checkpoint_id)


# -- host actions -------------------------------------------------------------------
def disable_host(s: FabricSession, host_name: str, move_within_cluster: bool = True) -> JobInfo:
    check_literal_name(s, host_name, "host", "Disable-SCVMHost")
    return _run_job(s, [cmd("Get-SCVMHost", ComputerName=host_name), cmd("Disable-SCVMHost", MoveWithinCluster=move_within_cluster)],
                    cmdlet="Disable-SCVMHost", target=host_name)


def enable_host(s: FabricSession, host_name: str) -> JobInfo:
    check_literal_name(s, host_name, "host", "Enable-SCVMHost")
    return _run_job(s, [cmd("Get-SCVMHost", ComputerName=host_name), cmd("Enable-SCVMHost")],
                    cmdlet="Enable-SCVMHost", target=host_name)


MOVE_SCRIPT = (
    "param($VMID, $HostName, $JobVariable)\n"
    "$vm = Get-SCVirtualMachine -ID $VMID\n"
    "$vmHost = Get-SCVMHost -ComputerName $HostName\n"
    "Move-SCVirtualMachine -VM $vm -VMHost $vmHost -RunAsynchronously -JobVariable $JobVariable | Out-Null"
)


def move_vm(s: FabricSession, vm_id: str, host_name: str, vm_name: str = "") -> JobInfo:
    """``Move-SCVirtualMachine`` needs two objects: a constant script, values bound as parameters."""
    check_literal_name(s, host_name, "host", "Move-SCVirtualMachine")
    variable = _job_variable()
    try:
        return _read_job(s, [[script(MOVE_SCRIPT, VMID=vm_id, HostName=host_name, JobVariable=variable)]], variable,
                         cmdlet="Move-SCVirtualMachine", target=vm_name or vm_id)
    except errors.FabricCommandError as exc:
        # $vm or $vmHost came back empty: PowerShell says "Cannot bind argument to parameter 'VM' because it is null."
        if exc.error_id.startswith("ParameterArgumentValidationErrorNullNotAllowed"):
            what = (f"no host is named {host_name}" if "'VMHost'" in exc.message
                    else f"no virtual machine has the ID {vm_id}")
            raise errors.NotFound(s.settings.name, f"{what}; nothing was moved", cmdlet="Move-SCVirtualMachine",
                                  target=vm_name or vm_id, kind=s.settings.kind) from exc
        raise
