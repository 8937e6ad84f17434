"""VMM- and SCOM-shaped SimObjects built from fabric entities.

Every object the simulator outputs for a fabric entity carries ``_sim_ref = (kind, id)``
so that handing it back to a cmdlet (``-VM $vm``) binds the live entity. Objects that
come back from a client without that attribute bind by type name + ``ID``.

Nested references (``VM.VMHost``, ``VM.Cloud``, ``Host.HostCluster``, ...) are small
cached objects of the right type with ``Name`` and ``ID`` (and ``_sim_ref``), not full
objects, so that big listings stay cheap.

Enum integer values are the simulator's (close to VMM's where known); clients should
compare enum *names* (``str(value)``) or use ``StatusString``.
"""
from __future__ import annotations

import datetime as _dt
import uuid

from ..contract import SimEnum, SimObject
from ..jobs import utcnow

NS = "Microsoft.SystemCenter.VirtualMachineManager"
T_VM = f"{NS}.VM"
T_HOST = f"{NS}.Host"
T_CLUSTER = f"{NS}.HostCluster"
T_CLOUD = f"{NS}.Cloud"
T_ROLE = f"{NS}.UserRole"
T_CHECKPOINT = f"{NS}.VMCheckpoint"
T_JOB = f"{NS}.Job"
T_SERVER = f"{NS}.Remoting.ServerConnection"
T_ERRORINFO = "Microsoft.VirtualManager.Utils.ErrorInfo"
T_MONOBJ = "Microsoft.EnterpriseManagement.Monitoring.MonitoringObject"
T_MAINT = "Microsoft.EnterpriseManagement.Monitoring.MaintenanceWindow"

TYPES = {"vm": T_VM, "host": T_HOST, "cluster": T_CLUSTER, "cloud": T_CLOUD, "role": T_ROLE,
         "checkpoint": T_CHECKPOINT, "job": T_JOB, "server": T_SERVER, "monobj": T_MONOBJ, "maint": T_MAINT}
_BASES = {T_VM: [f"{NS}.VMBase", f"{NS}.ClientObject"], T_HOST: [f"{NS}.ClientObject"]}


def type_names(t: str) -> list[str]:
    return [t, *_BASES.get(t, [f"{NS}.ClientObject"] if t.startswith(NS) else []), "System.Object"]


def _enum_family(type_name: str, values: dict) -> dict:
    return {name: SimEnum(type_name, name, v) for name, v in values.items()}


VM_STATE = _enum_family("Microsoft.VirtualManager.Utils.VMComputerSystemState", {
    "Running": 0, "PowerOff": 1, "PoweringOff": 2, "Saved": 3, "Saving": 4, "Restoring": 5, "Paused": 6,
    "DiscardSavedState": 10, "Starting": 11, "MergingDrives": 12, "Deleting": 13, "DiscardingDrives": 80,
    "Pausing": 81, "UnderCreation": 100, "CreationFailed": 101, "Stored": 102, "UnderUpdate": 106,
    "UpdateFailed": 107, "UnderMigration": 200, "MigrationFailed": 201, "CreatingCheckpoint": 210,
    "DeletingCheckpoint": 211, "RecoveringCheckpoint": 212, "CheckpointFailed": 213, "Missing": 220,
    "HostNotResponding": 221, "Unsupported": 222})
JOB_STATE = _enum_family("Microsoft.VirtualManager.Utils.TaskStatusEnum", {
    "Running": 1, "Completed": 2, "Failed": 3, "Canceled": 4, "SucceedWithInfo": 5})
HOST_STATE = _enum_family("Microsoft.VirtualManager.Utils.HostComputerState", {
    "Responding": 1, "MaintenanceMode": 7})
COMM_STATE = _enum_family("Microsoft.VirtualManager.Utils.CommunicationState", {"Responding": 1})
OVERALL = _enum_family("Microsoft.VirtualManager.Utils.HostOverallState", {"OK": 0, "NeedsAttention": 1})
PLATFORM = SimEnum("Microsoft.VirtualManager.Utils.VirtualizationPlatform", "HyperV", 2)
HEALTH = _enum_family("Microsoft.EnterpriseManagement.Configuration.HealthState", {
    "Uninitialized": 0, "Success": 1, "Warning": 2, "Error": 3})
MM_REASONS = ["PlannedOther", "UnplannedOther", "PlannedHardwareMaintenance", "UnplannedHardwareMaintenance",
              "PlannedHardwareInstallation", "UnplannedHardwareInstallation",
              "PlannedOperatingSystemReconfiguration", "UnplannedOperatingSystemReconfiguration",
              "PlannedApplicationMaintenance", "ApplicationInstallation", "ApplicationUnresponsive",
              "ApplicationUnstable", "SecurityIssue", "LossOfNetworkConnectivity"]
MM_REASON = _enum_family("Microsoft.EnterpriseManagement.Monitoring.MaintenanceModeReason",
                         {n: i for i, n in enumerate(MM_REASONS)})


_VM_TYPES = type_names(T_VM)


def _obj(t: str, props: dict, to_string: str, ref=None) -> SimObject:
    o = SimObject(type_names(t), props, to_string)
    if ref is not None:
        o._sim_ref = ref
    return o


def ref(fabric, kind: str, entity) -> SimObject | None:
    """A small cached reference object (Name, ID) for nesting in other objects."""
    if entity is None:
        return None
    key = (kind, entity.id)
    r = fabric.refs.get(key)
    if r is None:
        r = _obj(TYPES[kind], {"Name": entity.name, "ID": entity.id}, entity.name, key)
        fabric.refs[key] = r
    return r


def _host_info(f, host_id):
    """(host ref, host name, HostGroupPath) for a host, cached per host."""
    key = ("hostinfo", host_id)
    info = f.refs.get(key)
    if info is None:
        host = f.hosts.get(host_id)
        cluster = f.clusters.get(host.cluster_id) if host and host.cluster_id else None
        info = (ref(f, "host", host), host.name if host else "",
                f"All Hosts\\{cluster.name if cluster else 'Standalone'}")
        f.refs[key] = info
    return info


def vm_obj(f, vm) -> SimObject:
    host_ref, host_name, group = _host_info(f, vm.host_id)
    cloud = f.clouds.get(vm.cloud_id) if vm.cloud_id else None
    if f._cps_by_vm is None:
        f.checkpoints_of(vm.id)
    cps = f._cps_by_vm.get(vm.id)
    cps = [ref(f, "checkpoint", c) for c in cps] if cps else []
    status = vm.transient or vm.status
    c = vm.custom
    props = {
        "Name": vm.name, "ID": vm.id, "VMId": vm.vmid, "Status": VM_STATE[status], "StatusString": _words(status),
        "VMHost": host_ref, "HostName": host_name, "HostId": vm.host_id,
        "HostType": "VMHost", "HostGroupPath": group,
        "Cloud": ref(f, "cloud", cloud), "IsHighlyAvailable": vm.ha, "Memory": vm.memory_mb,
        "DynamicMemoryEnabled": False, "CPUCount": vm.cpu_count, "OperatingSystem": vm.os,
        "ComputerName": f"{vm.name}.{f.domain}" if f.domain else vm.name,
        "Owner": vm.owner, "UserRole": ref(f, "role", f.roles.get(vm.user_role_id)) if vm.user_role_id else None,
        "UserRoleID": vm.user_role_id,
        "Description": vm.description,
        "Custom1": c[0], "Custom2": c[1], "Custom3": c[2], "Custom4": c[3], "Custom5": c[4],
        "Custom6": c[5], "Custom7": c[6], "Custom8": c[7], "Custom9": c[8], "Custom10": c[9],
        "CustomProperty": dict(vm.custom_properties),
        "VMCheckpoints": cps, "LastRestoredVMCheckpoint": ref(f, "checkpoint", f.checkpoints.get(vm.last_restored))
        if vm.last_restored else None,
        "HasSavedState": vm.status == "Saved", "IsUndergoingLiveMigration": vm.migrating,
        "Enabled": True, "Generation": 2, "AddedTime": vm.added, "ModifiedTime": vm.modified,
        "MostRecentTaskID": vm.most_recent_job,
        "MostRecentTask": _job_name(f, vm.most_recent_job) if vm.most_recent_job else None,
        "ServerConnection": f.vmm_server,
    }
    o = SimObject(_VM_TYPES, props, vm.name)
    o._sim_ref = ("vm", vm.id)
    return o


def _words(state: str) -> str:
    out = []
    for i, ch in enumerate(state):
        if ch.isupper() and i and not state[i - 1].isupper():
            out.append(" ")
        out.append(ch)
    s = "".join(out)
    return {"Power Off": "Stopped"}.get(s, s)


def _job_name(f, job_id):
    if job_id is None:
        return None
    j = f.jobs.jobs.get(job_id)
    return j.name if j else None


def host_obj(f, h) -> SimObject:
    cluster = f.clusters.get(h.cluster_id) if h.cluster_id else None
    vms = f.vms_on(h.id)
    used = sum(v.memory_mb for v in vms if v.uses_memory)
    props = {
        "Name": h.name, "ComputerName": h.name, "FullyQualifiedDomainName": h.name, "ID": h.id,
        "HostCluster": ref(f, "cluster", cluster), "HostGroupPath": f"All Hosts\\{cluster.name if cluster else 'Standalone'}",
        "OverallState": OVERALL["OK"], "CommunicationState": COMM_STATE["Responding"],
        "ComputerState": HOST_STATE["MaintenanceMode" if h.maintenance else "Responding"],
        "MaintenanceHost": h.maintenance, "AvailableForPlacement": not h.maintenance,
        "VirtualizationPlatform": PLATFORM, "TotalMemory": h.memory_mb * 1024 * 1024,
        "AvailableMemory": h.memory_mb - used, "LogicalProcessorCount": h.cpu_count,
        "OperatingSystem": "Windows Server 2019 Datacenter",
        "VMs": [ref(f, "vm", v) for v in vms],
        "MostRecentTaskID": h.most_recent_job, "MostRecentTask": _job_name(f, h.most_recent_job),
    }
    return _obj(T_HOST, props, h.name, ("host", h.id))


def cluster_obj(f, c) -> SimObject:
    nodes = f.nodes(c.id)
    props = {"Name": c.name, "ClusterName": c.name, "ID": c.id, "HostGroup": f"All Hosts\\{c.name}",
             "Nodes": [ref(f, "host", h) for h in nodes], "NodeCount": len(nodes)}
    return _obj(T_CLUSTER, props, c.name, ("cluster", c.id))


def cloud_obj(f, c) -> SimObject:
    return _obj(T_CLOUD, {"Name": c.name, "ID": c.id, "Description": c.description}, c.name, ("cloud", c.id))


def role_obj(f, r) -> SimObject:
    per_cloud = {}
    union = []
    for cid in r.cloud_ids:
        cloud = f.clouds.get(cid)
        perms = list(r.permissions.get(str(cid), []))
        per_cloud[cloud.name if cloud else str(cid)] = perms
        union += [p for p in perms if p not in union]
    props = {"Name": r.name, "ID": r.id, "Profile": r.profile, "UserRoleProfile": r.profile,
             "Description": r.description, "Members": list(r.members),
             "Cloud": [ref(f, "cloud", f.clouds.get(c)) for c in r.cloud_ids if c in f.clouds],
             "Permission": union, "CloudPermission": per_cloud,
             "MostRecentTaskID": r.most_recent_job, "MostRecentTask": _job_name(f, r.most_recent_job)}
    return _obj(T_ROLE, props, r.name, ("role", r.id))


def checkpoint_obj(f, cp, vm=None) -> SimObject:
    vm = vm or f.vms.get(cp.vm_id)
    props = {"Name": cp.name, "Description": cp.description, "ID": cp.id, "CheckpointID": str(cp.id).upper(),
             "VM": ref(f, "vm", vm), "VMName": vm.name if vm else "", "VMId": cp.vm_id,
             "AddedTime": cp.added, "ModifiedTime": cp.added, "ParentCheckpointID": cp.parent_id,
             "VMStatusAtCheckpoint": cp.vm_status,
             "IsCurrent": bool(vm and vm.current_checkpoint == cp.id),
             "MostRecentTaskID": cp.most_recent_job, "MostRecentTask": _job_name(f, cp.most_recent_job)}
    return _obj(T_CHECKPOINT, props, cp.name, ("checkpoint", cp.id))


def error_info(code: int, problem: str, recommended: str = "") -> SimObject:
    props = {"DisplayableErrorCode": code, "Code": "Success" if code == 0 else f"Error{code}",
             "Problem": problem, "RecommendedAction": recommended, "CloudProblem": problem,
             "IsConditionallyTerminating": False}
    return SimObject([T_ERRORINFO, "System.Object"], props, problem)


def job_obj(f, j) -> SimObject:
    props = {"Name": j.name, "ID": j.id, "Status": JOB_STATE[j.status], "StatusString": j.status,
             "ProgressValue": j.progress, "Progress": f"{j.progress} %", "IsCompleted": j.done,
             "IsRestartable": False, "ErrorInfo": error_info(j.error_code, j.problem, j.recommended),
             "StartTime": j.start_time, "EndTime": j.end_time, "Owner": j.owner, "CmdletName": j.cmdlet,
             "Description": j.name, "CurrentStep": j.current_label, "ResultName": j.result_name,
             "ResultObjectID": j.result_id, "ResultObjectType": j.result_type}
    return _obj(T_JOB, props, j.name, ("job", j.id))


def server_obj(f, username: str) -> SimObject:
    props = {"Name": f.vmm_server, "FQDN": f.vmm_server, "ID": f.server_id, "Port": 8100,
             "ProductVersion": "10.22.1287.0", "IsConnected": True, "UserName": username,
             "UserRoleName": "Administrator"}
    return _obj(T_SERVER, props, f.vmm_server, ("server", f.server_id))


def monobj(f, s) -> SimObject:
    m = f.active_maint(s.id)
    cls = "Microsoft.Windows.Computer"
    props = {"Id": s.id, "ID": s.id, "Name": s.display_name, "DisplayName": s.display_name,
             "FullName": f"{cls}:{s.display_name}", "Path": None,
             "InMaintenanceMode": m is not None, "HealthState": HEALTH["Success"], "IsAvailable": True,
             "ManagementGroup": f.scom_server}
    props.pop("ID")
    return _obj(T_MONOBJ, props, s.display_name, ("monobj", s.id))


def maint_obj(f, m) -> SimObject:
    inst = f.scom.get(m.instance_id)
    props = {"Id": m.id, "MonitoringObjectId": m.instance_id,
             "MonitoringObjectName": inst.display_name if inst else "",
             "StartTime": m.start, "ScheduledEndTime": m.scheduled_end, "EndTime": m.end,
             "Reason": MM_REASON.get(m.reason, MM_REASON["PlannedOther"]), "Comments": m.comment,
             "User": m.user, "LastModified": m.modified, "IsActive": m.active(utcnow())}
    return _obj(T_MAINT, props, f"{inst.display_name if inst else m.instance_id}", ("maint", m.id))


_ = (_dt, uuid)
