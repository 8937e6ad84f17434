"""ConfigMgr cmdlets (the site on the same server; patching.py holds the rules). They run only from
the site drive (cmsite.py: ``Import-Module ConfigurationManager; Set-Location CM1:``).

Objects are IResultObjects of the SMS Provider's WMI classes with their property names:
SMS_CombinedDeviceResources (Get-CMDevice), SMS_Collection (Get-CMDeviceCollection),
SMS_AuthorizationList (Get-CMSoftwareUpdateGroup), SMS_UpdateGroupAssignment
(Get-CMSoftwareUpdateDeployment), SMS_SUMDeploymentStatus (Get-CMSoftwareUpdateDeploymentStatus: one
row per status bucket) and SMS_SUMDeploymentAssetDetails (Get-CMDeploymentStatusDetails: one row per
device of a bucket). Numbers are plain integers as WMI gives them (StatusType 1 Success, 2 InProgress,
4 Unknown, 5 Error). A collection, device or deployment named by a parameter that does not exist is
the cmdlets' "No object corresponds to the specified parameters." (ItemNotFound); Get-* cmdlets
return nothing instead. Adding a direct rule that exists is a warning, not an error.
"""
from __future__ import annotations

import fnmatch
import uuid

from .. import patching
from ..contract import PSError, SimObject
from ..jobs import utcnow
from .base import P, cmdlet
from .cmsite import require_site_drive

RO = "Microsoft.ConfigurationManagement.ManagementProvider.WqlQueryEngine.WqlResultObject"
ACTIONS = ("None", "EndpointProtectionFullScan", "EndpointProtectionQuickScan", "EndpointProtectionDownloadDefinition",
           "EndpointProtectionEvaluateSoftwareUpdate", "EndpointProtectionExcludeScanPaths",
           "EndpointProtectionAllowThreat", "EndpointProtectionRestoreQuarantinedItems",
           "ClientNotificationRequestMachinePolicyNow", "ClientNotificationRequestUsersPolicyNow",
           "ClientNotificationRequestDDRNow", "ClientNotificationRequestSWInvNow", "ClientNotificationRequestHWInvNow",
           "ClientNotificationAppDeplEvalNow", "ClientNotificationSUMDeplEvalNow", "ClientRequestSUPChangeNow",
           "ClientRequestDHAChangeNow", "ClientNotificationRebootMachine", "DiagnosticsEnableVerboseLogging",
           "DiagnosticsDisableVerboseLogging", "DiagnosticsCollectFiles", "EndpointProtectionRestoreWithDeps",
           "ClientNotificationCheckComplianceNow", "RequestScriptExecution", "RequestCMPivotExecution",
           "ClientNotificationWakeUpClientNow")
POLICY_ACTIONS = ("ClientNotificationRequestMachinePolicyNow", "ClientNotificationSUMDeplEvalNow")
READY, REFRESHING = 1, 2   # SMS_Collection.CurrentStatus


def _obj(wmi_class: str, props: dict, to_string: str, ref=None) -> SimObject:
    o = SimObject([f"IResultObject#{wmi_class}", RO, "System.Object"], props, to_string)
    o._cm_ref = ref
    return o


def not_found(cmdlet_name: str) -> PSError:
    return PSError("No object corresponds to the specified parameters.", error_id=f"ItemNotFound,{cmdlet_name}",
                   category="ObjectNotFound", exception_type="System.Management.Automation.ItemNotFoundException")


def _invalid(message: str, cmdlet_name: str) -> PSError:
    return PSError(message, error_id=f"InvalidOperation,{cmdlet_name}", category="InvalidOperation",
                   exception_type="System.InvalidOperationException")


def _like(name: str, pattern) -> bool:
    return fnmatch.fnmatchcase(name.lower(), str(pattern).lower())


def _ref_of(value, kind: str):
    """The key a piped or passed object stands for (our own objects, or a row with the key property)."""
    ref = getattr(value, "_cm_ref", None)
    if ref and ref[0] == kind:
        return ref[1]
    if isinstance(value, SimObject):
        key = {"collection": "CollectionID", "device": "ResourceID", "deployment": "AssignmentID",
               "status": "AssignmentID"}[kind]
        if value.get(key) is not None:
            return value.get(key)
    return None


def _site(ctx):
    require_site_drive(ctx)
    f = ctx.f
    f.advance()
    return f.patching


# ---- objects -------------------------------------------------------------------------------
def device_obj(f, w, d) -> SimObject:
    host = f.find_host(d.host)
    online = host is not None and not w.rebooting(host)
    hp = w.hosts.get(d.host.lower())
    props = {"Name": d.name, "ResourceID": d.resource_id, "IsClient": True, "IsActive": True, "ClientActiveStatus": 1,
             "ClientType": 1, "ClientVersion": "5.00.9128.1000", "DeviceOS": "Microsoft Windows NT Server 10.0",
             "Domain": f.domain.split(".")[0].upper(), "SiteCode": w.site_code, "IsVirtualMachine": False,
             "IsBlocked": False, "IsObsolete": False, "SMSID": f"GUID:{uuid.uuid5(uuid.NAMESPACE_DNS, d.host)}",
             "CNIsOnline": online, "CNLastOnlineTime": hp.last_boot if hp else None,
             "LastPolicyRequest": d.last_policy_request, "LastActiveTime": d.last_policy_request}
    return _obj("SMS_CombinedDeviceResources", props, d.name, ("device", d.resource_id))


def collection_obj(c) -> SimObject:
    props = {"CollectionID": c.id, "Name": c.name, "Comment": c.comment, "CollectionType": 2, "IsBuiltIn": c.builtin,
             "MemberCount": len(c.members), "LastRefreshTime": c.last_refresh, "LastMemberChangeTime": c.last_member_change,
             "CurrentStatus": REFRESHING if c.refresh_due else READY,
             "LimitToCollectionID": "" if c.builtin else "SMS00001",
             "LimitToCollectionName": "" if c.builtin else "All Systems"}
    return _obj("SMS_Collection", props, c.name, ("collection", c.id))


def group_obj(w, g) -> SimObject:
    deployed = any(d.group_ci_id == g.ci_id for d in w.deployments.values())
    props = {"CI_ID": g.ci_id, "CI_UniqueID": f"ScopeId_{w.site_code}/AuthList_{g.ci_id}",
             "LocalizedDisplayName": g.name, "LocalizedDescription": g.description,
             "Updates": [w.updates[kb].ci_id for kb in g.updates if kb in w.updates],
             "NumberOfUpdates": len(g.updates), "IsDeployed": deployed, "DateCreated": g.created,
             "DateLastModified": g.created, "CreatedBy": "CONTOSO\\cmadmin"}
    return _obj("SMS_AuthorizationList", props, g.name, ("group", g.ci_id))


def deployment_obj(w, d) -> SimObject:
    group = w.groups.get(d.group_ci_id)
    props = {"AssignmentID": d.assignment_id, "AssignmentName": d.name, "AssignmentUniqueID": d.unique_id,
             "AssignedUpdateGroup": d.group_ci_id,
             "AssignedCIs": [w.updates[kb].ci_id for kb in (group.updates if group else []) if kb in w.updates],
             "TargetCollectionID": d.collection_id, "Enabled": d.enabled, "AssignmentType": 5,
             "CreationTime": d.created, "StartTime": d.created, "EnforcementDeadline": d.created,
             "SuppressReboot": 2 if d.suppress_reboot else 0, "OverrideServiceWindows": True,
             "RebootOutsideOfServiceWindows": False, "SourceSite": w.site_code}
    return _obj("SMS_UpdateGroupAssignment", props, d.name, ("deployment", d.assignment_id))


def _device_status(w, dev, dep):
    run = w.device_state(dev, dep)
    state = run.state if run is not None else "unknown"
    stype, desc, enforcement = patching.STATES[state]
    code = run.error_code if run is not None and state == "failed" else 0
    return stype, desc, enforcement, code, run.status_time if run else None


def status_rows(w, dep) -> list[SimObject]:
    coll = w.collections.get(dep.collection_id)
    buckets: dict = {}
    for dev in w.deployment_members(dep):
        stype, desc, enforcement, code, when = _device_status(w, dev, dep)
        b = buckets.setdefault((stype, desc, code), {"n": 0, "enforcement": enforcement, "last": None})
        b["n"] += 1
        if when and (b["last"] is None or when > b["last"]):
            b["last"] = when
    now = utcnow()
    rows = []
    for (stype, desc, code), b in sorted(buckets.items(), key=lambda kv: kv[0][:2]):
        props = {"Assets": b["n"], "AssignmentID": dep.assignment_id, "AssignmentName": dep.name,
                 "CollectionID": dep.collection_id, "CollectionName": coll.name if coll else "",
                 "StatusType": stype, "StatusDescription": desc, "StatusEnforcementState": b["enforcement"],
                 "StatusErrorCode": code, "LastStatusTime": b["last"], "SummarizationTime": now}
        rows.append(_obj("SMS_SUMDeploymentStatus", props, desc, ("status", dep.assignment_id)))
    return rows


def detail_rows(f, w, dep, stype=None, desc=None, code=None) -> list[SimObject]:
    coll = w.collections.get(dep.collection_id)
    rows = []
    for dev in w.deployment_members(dep):
        st, d, enforcement, c, when = _device_status(w, dev, dep)
        if stype is not None and (st, d, c) != (stype, desc, code):
            continue
        props = {"DeviceName": dev.name, "ResourceID": dev.resource_id, "IsCompliant": 1 if st == 1 else 0,
                 "StatusType": st, "StatusDescription": d, "StatusTime": when, "StatusEnforcementState": enforcement,
                 "StatusErrorCode": c, "LastEnforcementMessageID": enforcement, "LastEnforcementMessageDesc": d,
                 "LastEnforcementMessageTime": when, "LastEnforcementErrorCode": c,
                 "AssignmentID": dep.assignment_id, "AssignmentName": dep.name, "CollectionID": dep.collection_id,
                 "CollectionName": coll.name if coll else "", "IsVM": False, "VMHostName": ""}
        rows.append(_obj("SMS_SUMDeploymentAssetDetails", props, dev.name, ("device", dev.resource_id)))
    return rows


# ---- resolving parameters ------------------------------------------------------------------
def _collection(ctx, a, name_key="CollectionName", id_key="CollectionId", obj_key="InputObject"):
    w = _site(ctx)
    if a.get(obj_key) is not None:
        c = w.collections.get(_ref_of(a[obj_key], "collection"))
    else:
        c = w.find_collection(name=a.get(name_key), coll_id=a.get(id_key))
    if c is None:
        raise not_found(ctx.name)
    return c


def _resources(ctx, ids, objects=(), names=()):
    w = _site(ctx)
    out = []
    for rid in list(ids or []) + [_ref_of(o, "device") for o in objects or []]:
        try:
            dev = w.devices.get(int(rid))
        except (TypeError, ValueError):
            dev = None
        if dev is None:
            raise not_found(ctx.name)
        out.append(dev)
    for n in names or []:
        dev = next((d for d in w.devices.values() if d.name.lower() == str(n).lower()), None)
        if dev is None:
            raise not_found(ctx.name)
        out.append(dev)
    return out


# ---- devices and collections ---------------------------------------------------------------
@cmdlet("Get-CMDevice", [P("Name", position=0), P("CollectionName"), P("CollectionId"), P("Collection", "any"),
                         P("ResourceId", "int", aliases=("Id", "DeviceId")), P("Fast", "switch"),
                         P("Resource", "any")])
def get_device(ctx, a):
    require_site_drive(ctx)
    ctx.fault_now([a.get("Name") or ""])
    f = ctx.f
    with f.lock:
        w = _site(ctx)
        devices = sorted(w.devices.values(), key=lambda d: d.name.lower())
        if any(a.get(k) is not None for k in ("CollectionName", "CollectionId", "Collection")):
            coll = _collection(ctx, a, "CollectionName", "CollectionId", "Collection")
            devices = [d for d in devices if d.resource_id in coll.members]
        if a.get("Name"):
            devices = [d for d in devices if _like(d.name, a["Name"])]
        if a.get("ResourceId") is not None:
            devices = [d for d in devices if d.resource_id == a["ResourceId"]]
        out = [device_obj(f, w, d) for d in devices]
    if not a.get("Fast"):
        ctx.warn("The cmdlet 'Get-CMDevice' has been invoked without the 'Fast' parameter; lazy properties are loaded.")
    return out


@cmdlet("Get-CMDeviceCollection", [P("Name", position=0), P("Id", aliases=("CollectionId",))])
def get_collection(ctx, a):
    require_site_drive(ctx)
    ctx.fault_now([a.get("Name") or ""])
    with ctx.f.lock:
        w = _site(ctx)
        colls = sorted(w.collections.values(), key=lambda c: c.id)
        if a.get("Name"):
            colls = [c for c in colls if _like(c.name, a["Name"])]
        if a.get("Id"):
            colls = [c for c in colls if c.id.lower() == a["Id"].lower()]
        return [collection_obj(c) for c in colls]


_RULE_TARGET = [P("CollectionId", aliases=("Id",)), P("CollectionName", aliases=("Name",)),
                P("InputObject", "any", pipeline=True, aliases=("Collection",)), P("PassThru", "switch")]


@cmdlet("Add-CMDeviceCollectionDirectMembershipRule", [*_RULE_TARGET, P("ResourceId", "int", many=True),
                                                        P("Resource", "any", many=True)])
def add_rule(ctx, a):
    with ctx.f.lock:
        coll = _collection(ctx, a)
        devices = _resources(ctx, a.get("ResourceId"), a.get("Resource"))
        ctx.fault_now([coll.name] + [d.host for d in devices])
        if coll.builtin:
            raise _invalid(f"Collection {coll.name} ({coll.id}) is a default collection; it cannot take membership "
                           "rules.", ctx.name)
        for dev in devices:
            if dev.resource_id in coll.rules:
                ctx.warn(f"A direct membership rule for resource {dev.resource_id} ({dev.name}) already exists in "
                         f"collection {coll.name}.")
                continue
            coll.rules.append(dev.resource_id)
        return [collection_obj(coll)] if a.get("PassThru") else []


@cmdlet("Remove-CMDeviceCollectionDirectMembershipRule", [*_RULE_TARGET, P("ResourceId", "strings", many=True),
                                                           P("ResourceName", "strings", many=True),
                                                           P("Resource", "any", many=True), P("Force", "switch")])
def remove_rule(ctx, a):
    with ctx.f.lock:
        coll = _collection(ctx, a)
        devices = _resources(ctx, a.get("ResourceId"), a.get("Resource"), a.get("ResourceName"))
        ctx.fault_now([coll.name] + [d.host for d in devices])
        for dev in devices:
            if dev.resource_id in coll.rules:
                coll.rules.remove(dev.resource_id)
        return [collection_obj(coll)] if a.get("PassThru") else []


@cmdlet("Invoke-CMCollectionUpdate", [P("Name", position=0), P("CollectionId", aliases=("Id",)),
                                      P("InputObject", "any", pipeline=True, aliases=("Collection",))])
def update_collection(ctx, a):
    with ctx.f.lock:
        coll = _collection(ctx, a, "Name", "CollectionId")
        ctx.fault_now([coll.name])
        patching.request_refresh(ctx.f, coll)
    return []


@cmdlet("Invoke-CMClientAction", [P("DeviceName", aliases=("Name",)), P("DeviceId", "int", aliases=("ResourceId",)),
                                  P("Device", "any", pipeline=True), P("CollectionName"), P("CollectionId"),
                                  P("Collection", "any"), P("ActionType", choices=ACTIONS),
                                  P("NotificationType", choices=("RequestMachinePolicyNow", "RequestUsersPolicyNow"))],)
def client_action(ctx, a):
    require_site_drive(ctx)
    action = a.get("ActionType") or {"RequestMachinePolicyNow": "ClientNotificationRequestMachinePolicyNow"}.get(
        a.get("NotificationType") or "", "")
    if action not in POLICY_ACTIONS + ("ClientNotificationRebootMachine",):
        raise PSError(f"The action {action or a.get('NotificationType')!r} is not supported by this simulator "
                      "(it supports machine policy, deployment evaluation and restart).", error_id="NotSupported",
                      category="InvalidArgument", exception_type="System.NotSupportedException")
    f = ctx.f
    with f.lock:
        w = _site(ctx)
        if a.get("DeviceName"):
            devices = _resources(ctx, (), (), [a["DeviceName"]])
        elif a.get("DeviceId") is not None or a.get("Device") is not None:
            devices = _resources(ctx, [a["DeviceId"]] if a.get("DeviceId") is not None else [],
                                 [a["Device"]] if a.get("Device") is not None else [])
        elif any(a.get(k) is not None for k in ("CollectionName", "CollectionId", "Collection")):
            coll = _collection(ctx, a, "CollectionName", "CollectionId", "Collection")
            devices = [w.devices[r] for r in coll.members if r in w.devices]
        else:
            raise PSError("Specify -DeviceName, -DeviceId, -Device, -CollectionName, -CollectionId or -Collection.",
                          error_id="AmbiguousParameterSet", category="InvalidArgument",
                          exception_type="System.Management.Automation.ParameterBindingException")
        for dev in devices:
            ctx.fault_now([dev.host, dev.name])
            host = f.find_host(dev.host)
            if action == "ClientNotificationRebootMachine":
                if host is not None and not w.rebooting(host):
                    patching.begin_reboot(f, host)
            else:
                patching.request_policy(f, dev)
    return []


# ---- software updates ----------------------------------------------------------------------
@cmdlet("Get-CMSoftwareUpdateGroup", [P("Name", position=0, aliases=("LocalizedDisplayName",)),
                                      P("Id", "int", aliases=("CIId", "CI_ID"))])
def get_group(ctx, a):
    require_site_drive(ctx)
    ctx.fault_now([a.get("Name") or ""])
    with ctx.f.lock:
        w = _site(ctx)
        groups = sorted(w.groups.values(), key=lambda g: g.name.lower())
        if a.get("Name"):
            groups = [g for g in groups if _like(g.name, a["Name"])]
        if a.get("Id") is not None:
            groups = [g for g in groups if g.ci_id == a["Id"]]
        return [group_obj(w, g) for g in groups]


@cmdlet("Get-CMSoftwareUpdateDeployment", [P("Name", aliases=("SoftwareUpdateName",)),
                                           P("DeploymentId", aliases=("AssignmentUniqueID", "SoftwareUpdateDeploymentID")),
                                           P("SmsObjectId", "int", aliases=("CI_ID",)), P("InputObject", "any", pipeline=True),
                                           P("CollectionName"), P("CollectionId"), P("Collection", "any"),
                                           P("Summary", "switch")])
def get_deployment(ctx, a):
    require_site_drive(ctx)
    ctx.fault_now([a.get("Name") or a.get("DeploymentId") or ""])
    if a.get("Summary"):
        raise PSError("-Summary (SMS_DeploymentSummary) is not supported by this simulator.", error_id="NotSupported",
                      category="InvalidArgument", exception_type="System.NotSupportedException")
    with ctx.f.lock:
        w = _site(ctx)
        deps = sorted(w.deployments.values(), key=lambda d: d.assignment_id)
        if a.get("Name"):
            deps = [d for d in deps if _like(d.name, a["Name"])]
        if a.get("DeploymentId"):
            want = a["DeploymentId"].strip("{}").lower()
            deps = [d for d in deps if d.unique_id.strip("{}").lower() == want]
        if a.get("SmsObjectId") is not None:
            deps = [d for d in deps if d.group_ci_id == a["SmsObjectId"]]
        if a.get("InputObject") is not None:
            group = getattr(a["InputObject"], "_cm_ref", None)
            deps = [d for d in deps if group and group[0] == "group" and d.group_ci_id == group[1]]
        if any(a.get(k) is not None for k in ("CollectionName", "CollectionId", "Collection")):
            coll = _collection(ctx, a, "CollectionName", "CollectionId", "Collection")
            deps = [d for d in deps if d.collection_id == coll.id]
        return [deployment_obj(w, d) for d in deps]


@cmdlet("Get-CMSoftwareUpdateDeploymentStatus", [P("InputObject", "any", mandatory=True, pipeline=True,
                                                   aliases=("SoftwareUpdate", "Assignment", "Deployment"))])
def get_deployment_status(ctx, a):
    with ctx.f.lock:
        w = _site(ctx)
        dep = w.deployments.get(_ref_of(a["InputObject"], "deployment"))
        if dep is None:
            raise not_found(ctx.name)
        ctx.fault_now([dep.name])
        return status_rows(w, dep)


@cmdlet("Get-CMDeploymentStatusDetails", [P("InputObject", "any", mandatory=True, pipeline=True)])
def get_status_details(ctx, a):
    row = a["InputObject"]
    with ctx.f.lock:
        w = _site(ctx)
        dep = w.deployments.get(_ref_of(row, "status"))
        if dep is None or not isinstance(row, SimObject) or row.get("StatusType") is None:
            raise not_found(ctx.name)
        ctx.fault_now([dep.name])
        return detail_rows(ctx.f, w, dep, row.get("StatusType"), row.get("StatusDescription"),
                           row.get("StatusErrorCode"))
