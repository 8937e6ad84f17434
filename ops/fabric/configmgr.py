"""Typed ConfigMgr calls: a node joins the deployment's collection, the collection is refreshed,
the client is asked for machine policy, and the deployment's per-device status is followed.

Every function takes a ``FabricSession`` for a ServerConnection of kind ``configmgr`` (the SMS
Provider / site server, reached over WinRM like VMM) and sends structured commands only. Errors
are the typed ``ops.fabric.errors`` exceptions naming the server, the cmdlet, the target and the
server's message (``ConfigMgr server cm01: Add-CMDeviceCollectionDirectMembershipRule on HV-B01
failed: No object corresponds to the specified parameters.``); a collection, device or deployment
that does not exist raises ``errors.NotFound``.

The order a patch run uses, one node at a time::

    dep = configmgr.get_deployment(s, name="2026-12 Hyper-V Hosts - Patch Window")
    dev = configmgr.get_device(s, "hv-b01.contoso.com")          # a host name or its device name
    configmgr.add_to_collection(s, dep.collection_id, dev)       # a direct membership rule
    before = configmgr.refresh_collection(s, dep.collection_id)  # asynchronous in ConfigMgr ...
    configmgr.wait_collection_refreshed(s, dep.collection_id, before, timeout=600)  # ... LastRefreshTime moves
    configmgr.request_machine_policy(s, dev)                     # the client evaluates the deployment
    st = configmgr.device_status(s, dep, dev)                    # poll: st.in_progress / pending_restart / failed / compliant
    # st.pending_restart -> vmm_hosts.restart_host(v, host) and vmm_hosts.wait_host_responding(v, host, timeout)
    # then poll device_status again until st.compliant; configmgr.pending_updates(s, dep, dev) == [] confirms it
    # st.failed -> st.error_code, and update_compliance(s, dev) gives each update's own result code
    configmgr.remove_from_collection(s, dep.collection_id, dev); configmgr.refresh_collection(s, dep.collection_id)

Before a run: ``list_deployments(s)`` (or ``get_deployment``) picks the deployment, ``pending_updates``
lists what a node needs (titles, KBs, ConfigMgr's time estimate); the holding collection of seed 004
takes nodes with ``add_to_collection`` like the window does.

Every call first imports the ConfigurationManager module and sets the location to the site drive
(found once per session with ``Get-PSDrive -PSProvider CMSite``), as ConfigMgr cmdlets require.
Membership only counts after the refresh: a policy request before it installs nothing. A device
that has not reported for a deployment is ``status_type`` 4 (Unknown). Status types: 1 Success,
2 InProgress (also "Pending system restart"), 4 Unknown, 5 Error (``error_code`` is the install's
error, e.g. -2147024891 = 0x80070005). Devices and collections are named as ConfigMgr names them;
``get_device`` accepts a host's FQDN and asks for its short name.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
import weakref

from . import errors
from .commands import check_literal_name, cmd, parse_date, parse_json_output, select_json
from .session import FabricSession

DEVICE_FIELDS = ("Name", "ResourceID", "IsClient", "ClientActiveStatus", "CNIsOnline", "LastPolicyRequest")
COLLECTION_FIELDS = ("CollectionID", "Name", "MemberCount", "LastRefreshTime", "LastMemberChangeTime", "CurrentStatus")
GROUP_FIELDS = ("CI_ID", "LocalizedDisplayName", "Updates", "IsDeployed")
DEPLOYMENT_FIELDS = ("AssignmentID", "AssignmentName", "AssignmentUniqueID", "AssignedUpdateGroup",
                     "TargetCollectionID", "Enabled")
DETAIL_FIELDS = ("DeviceName", "ResourceID", "IsCompliant", "StatusType", "StatusDescription", "StatusErrorCode",
                 "StatusTime")
STATUS_TYPES = {1: "Success", 2: "InProgress", 4: "Unknown", 5: "Error"}
PENDING_RESTART = "Pending system restart"
COLLECTION_REFRESHING = 2  # SMS_Collection.CurrentStatus
UPDATE_FIELDS = ("CI_ID", "ArticleID", "LocalizedDisplayName", "MaxExecutionTime")
COMPLIANCE_FIELDS = ("CI_ID", "Status", "LastEnforcementMessageID", "LastErrorCode")
COMPLIANCE_STATES = {0: "Unknown", 1: "NotRequired", 2: "Required", 3: "Installed"}
MSG_PENDING_RESTART = 9    # state message topic 402: pending system restart


@dataclasses.dataclass
class DeviceInfo:
    resource_id: int
    name: str
    is_client: bool
    client_active: bool
    online: bool          # reachable over the client notification channel (False while rebooting)
    last_policy_request: dt.datetime | None = None


@dataclasses.dataclass
class CollectionInfo:
    id: str
    name: str
    member_count: int
    last_refresh_time: dt.datetime | None
    last_member_change_time: dt.datetime | None
    refreshing: bool


@dataclasses.dataclass
class UpdateGroupInfo:
    ci_id: int
    name: str
    update_ci_ids: list
    deployed: bool


@dataclasses.dataclass
class DeploymentInfo:
    assignment_id: int
    name: str
    deployment_id: str    # AssignmentUniqueID, what -DeploymentId takes
    update_group_ci_id: int
    collection_id: str
    enabled: bool


@dataclasses.dataclass
class SoftwareUpdateInfo:
    ci_id: int
    article_id: str        # "KB5048661"
    title: str
    max_execution_s: int   # ConfigMgr's estimate of the install time


@dataclasses.dataclass
class UpdateCompliance:
    """One update on one device (SMS_UpdateComplianceStatus)."""
    ci_id: int
    status: str            # Required, Installed, NotRequired, Unknown
    error_code: int        # the last install's error (0 = none)
    pending_restart: bool  # installed, waiting for the restart


@dataclasses.dataclass
class DeviceStatus:
    device_name: str
    resource_id: int
    is_compliant: bool
    status_type: int
    description: str
    error_code: int
    status_time: dt.datetime | None

    @property
    def status(self) -> str:
        return STATUS_TYPES.get(self.status_type, str(self.status_type))

    @property
    def compliant(self) -> bool:
        return self.status_type == 1 and self.is_compliant

    @property
    def pending_restart(self) -> bool:
        return self.status_type == 2 and self.description == PENDING_RESTART

    @property
    def in_progress(self) -> bool:
        return self.status_type == 2 and not self.pending_restart

    @property
    def failed(self) -> bool:
        return self.status_type == 5


_IMPORT = [cmd("Import-Module", Name="ConfigurationManager")]
_site_drives: "weakref.WeakKeyDictionary[FabricSession, str]" = weakref.WeakKeyDictionary()


def site_drive(s: FabricSession) -> str:
    """The site's PSDrive (``CM1:``), asked once per session: ConfigMgr cmdlets run only from it."""
    drive = _site_drives.get(s)
    if drive is None:
        rows = parse_json_output(s.run([_IMPORT, [cmd("Get-PSDrive", PSProvider="CMSite"), *select_json("Name", "Root")]],
                                       cmdlet="Get-PSDrive", target="CMSite").output)
        if not rows:
            raise errors.FabricCommandError(s.settings.name, "the ConfigurationManager module shows no site drive; is "
                                            "this a ConfigMgr site server with the console installed?",
                                            cmdlet="Get-PSDrive", target="CMSite", kind=s.settings.kind)
        drive = _site_drives[s] = f"{rows[0].get('Name')}:"
    return drive


def _run(s: FabricSession, statements, *, cmdlet: str, target: str = ""):
    """Statements run on the site drive (the module import and the location are per runspace; both
    are repeated in the same round trip, so any pooled runspace will do)."""
    return s.run([_IMPORT, [cmd("Set-Location", Path=site_drive(s))], *statements], cmdlet=cmdlet, target=target)


def _int(v) -> int:
    return int(v or 0)


def _query(s: FabricSession, pipeline, fields, *, cmdlet: str, target: str = "") -> list[dict]:
    return parse_json_output(_run(s, [pipeline + select_json(*fields)], cmdlet=cmdlet, target=target).output)


def _not_found(s: FabricSession, what: str, cmdlet: str, target: str):
    return errors.NotFound(s.settings.name, what, cmdlet=cmdlet, target=target, kind=s.settings.kind)


def device_name(host_or_device: str) -> str:
    """ConfigMgr names a device by its NetBIOS name: ``hv-b01.contoso.com`` -> ``HV-B01``."""
    return str(host_or_device).split(".")[0].upper()


# -- devices --------------------------------------------------------------------------------
def _device(r: dict) -> DeviceInfo:
    return DeviceInfo(_int(r.get("ResourceID")), str(r.get("Name") or ""), bool(r.get("IsClient")),
                      _int(r.get("ClientActiveStatus")) == 1, bool(r.get("CNIsOnline")),
                      parse_date(r.get("LastPolicyRequest")))


def get_device(s: FabricSession, name: str) -> DeviceInfo:
    """The device of a host (FQDN or device name)."""
    short = device_name(name)
    check_literal_name(s, short, "device", "Get-CMDevice")
    rows = _query(s, [cmd("Get-CMDevice", Name=short, Fast=True)], DEVICE_FIELDS, cmdlet="Get-CMDevice", target=short)
    if not rows:
        raise _not_found(s, f"no device is named {short}", "Get-CMDevice", short)
    return _device(rows[0])


def list_devices(s: FabricSession, collection: str | None = None) -> list[DeviceInfo]:
    """Every device, or the effective members of one collection (its ID or its name)."""
    which = {f"Collection{k}": v for k, v in _collection_args(collection).items()} if collection else {}
    rows = _query(s, [cmd("Get-CMDevice", **which, Fast=True)], DEVICE_FIELDS,
                  cmdlet="Get-CMDevice", target=collection or "")
    return [_device(r) for r in rows]


def _resource_id(device: DeviceInfo | int) -> int:
    return device.resource_id if isinstance(device, DeviceInfo) else int(device)


def _label(device: DeviceInfo | int) -> str:
    return device.name if isinstance(device, DeviceInfo) else str(device)


# -- collections ----------------------------------------------------------------------------
def _collection(r: dict) -> CollectionInfo:
    return CollectionInfo(str(r.get("CollectionID") or ""), str(r.get("Name") or ""), _int(r.get("MemberCount")),
                          parse_date(r.get("LastRefreshTime")), parse_date(r.get("LastMemberChangeTime")),
                          _int(r.get("CurrentStatus")) == COLLECTION_REFRESHING)


def _collection_args(collection: str) -> dict:
    """A collection ID (``CM100015``, ``SMS00001``) or a name."""
    text = str(collection)
    is_id = len(text) == 8 and text[:3].isalnum() and text[3:].isdigit()
    return {"Id" if is_id else "Name": text}


def list_collections(s: FabricSession) -> list[CollectionInfo]:
    """Every device collection of the site."""
    rows = _query(s, [cmd("Get-CMDeviceCollection")], COLLECTION_FIELDS, cmdlet="Get-CMDeviceCollection", target="")
    return [_collection(r) for r in rows]


def get_collection(s: FabricSession, collection: str) -> CollectionInfo:
    check_literal_name(s, collection, "collection", "Get-CMDeviceCollection")
    rows = _query(s, [cmd("Get-CMDeviceCollection", **_collection_args(collection))], COLLECTION_FIELDS,
                  cmdlet="Get-CMDeviceCollection", target=collection)
    if not rows:
        raise _not_found(s, f"no device collection is named {collection}", "Get-CMDeviceCollection", collection)
    return _collection(rows[0])


def _rule_target(collection: str) -> dict:
    args = _collection_args(collection)
    return {"CollectionId": args["Id"]} if "Id" in args else {"CollectionName": args["Name"]}


def _add_rule(collection: str, device: DeviceInfo | int):
    return cmd("Add-CMDeviceCollectionDirectMembershipRule", **_rule_target(collection), ResourceId=[_resource_id(device)])


def _update(collection: str):
    args = _collection_args(collection)
    return cmd("Invoke-CMCollectionUpdate", **({"CollectionId": args["Id"]} if "Id" in args else {"Name": args["Name"]}))


def add_to_collection(s: FabricSession, collection: str, device: DeviceInfo | int, refresh: bool = False) -> None:
    """A direct membership rule; effective after the next refresh. Adding it twice is harmless.
    With ``refresh``, the refresh is asked for in the same round trip (``Invoke-CMCollectionUpdate``)."""
    statements = [[_add_rule(collection, device)]] + ([[_update(collection)]] if refresh else [])
    _run(s, statements, cmdlet="Add-CMDeviceCollectionDirectMembershipRule" + (", Invoke-CMCollectionUpdate" if refresh else ""),
         target=f"{_label(device)} in {collection}")


def remove_from_collection(s: FabricSession, collection: str, device: DeviceInfo | int, refresh: bool = False) -> None:
    """The device's direct membership rule out (removing it twice is harmless); with ``refresh``, the
    refresh asked for in the same round trip."""
    statements = [[cmd("Remove-CMDeviceCollectionDirectMembershipRule", **_rule_target(collection),
                       ResourceId=[str(_resource_id(device))], Force=True)]] + ([[_update(collection)]] if refresh else [])
    _run(s, statements, cmdlet="Remove-CMDeviceCollectionDirectMembershipRule" + (", Invoke-CMCollectionUpdate" if refresh else ""),
         target=f"{_label(device)} in {collection}")


def refresh_collection(s: FabricSession, collection: str) -> CollectionInfo:
    """Ask for a membership update; returns the collection as it was before (pass it to
    ``wait_collection_refreshed``)."""
    before = get_collection(s, collection)
    _run(s, [[_update(collection)]], cmdlet="Invoke-CMCollectionUpdate", target=collection)
    return before


def wait_collection_refreshed(s: FabricSession, collection: str, before: CollectionInfo, timeout: float,
                              poll: float = 2.0) -> CollectionInfo:
    """Poll until ``LastRefreshTime`` is later than ``before``'s (the update ran)."""
    deadline = time.monotonic() + timeout
    while True:
        now = get_collection(s, collection)
        if now.last_refresh_time and (before.last_refresh_time is None or now.last_refresh_time > before.last_refresh_time):
            return now
        if time.monotonic() > deadline:
            raise errors.FabricTimeout(s.settings.name, f"collection {collection} was not refreshed within {timeout:.0f} s",
                                       cmdlet="Invoke-CMCollectionUpdate", target=collection, kind=s.settings.kind)
        time.sleep(poll)


# -- client actions --------------------------------------------------------------------------
def request_machine_policy(s: FabricSession, device: DeviceInfo | int) -> None:
    """Invoke-CMClientAction -ActionType ClientNotificationRequestMachinePolicyNow (fast channel: an
    offline client does not get it)."""
    _run(s, [[cmd("Invoke-CMClientAction", DeviceId=_resource_id(device),
                ActionType="ClientNotificationRequestMachinePolicyNow")]],
          cmdlet="Invoke-CMClientAction", target=_label(device))


# -- update groups and deployments -----------------------------------------------------------
def list_update_groups(s: FabricSession, name: str | None = None) -> list[UpdateGroupInfo]:
    rows = _query(s, [cmd("Get-CMSoftwareUpdateGroup", Name=name)], GROUP_FIELDS, cmdlet="Get-CMSoftwareUpdateGroup",
                  target=name or "")
    out = []
    for r in rows:
        ids = r.get("Updates") or []
        out.append(UpdateGroupInfo(_int(r.get("CI_ID")), str(r.get("LocalizedDisplayName") or ""),
                                   [int(i) for i in (ids if isinstance(ids, list) else [ids])], bool(r.get("IsDeployed"))))
    return out


def _deployment(r: dict) -> DeploymentInfo:
    return DeploymentInfo(_int(r.get("AssignmentID")), str(r.get("AssignmentName") or ""),
                          str(r.get("AssignmentUniqueID") or ""), _int(r.get("AssignedUpdateGroup")),
                          str(r.get("TargetCollectionID") or ""), bool(r.get("Enabled")))


def list_deployments(s: FabricSession, collection: str | None = None) -> list[DeploymentInfo]:
    """Software update deployments, optionally only those targeting one collection (ID or name)."""
    args = {}
    if collection:
        c = _collection_args(collection)
        args = {"CollectionId": c["Id"]} if "Id" in c else {"CollectionName": c["Name"]}
    rows = _query(s, [cmd("Get-CMSoftwareUpdateDeployment", **args)], DEPLOYMENT_FIELDS,
                  cmdlet="Get-CMSoftwareUpdateDeployment", target=collection or "")
    return [_deployment(r) for r in rows]


def get_deployment(s: FabricSession, name: str | None = None, deployment_id: str | None = None) -> DeploymentInfo:
    """One deployment by its name or its AssignmentUniqueID."""
    if not (name or deployment_id):
        raise ValueError("get_deployment needs a name or a deployment_id")
    target = name or deployment_id
    if name:
        check_literal_name(s, name, "deployment", "Get-CMSoftwareUpdateDeployment")
    rows = _query(s, [cmd("Get-CMSoftwareUpdateDeployment", Name=name, DeploymentId=deployment_id)], DEPLOYMENT_FIELDS,
                  cmdlet="Get-CMSoftwareUpdateDeployment", target=target)
    if not rows:
        raise _not_found(s, f"no software update deployment is {target}", "Get-CMSoftwareUpdateDeployment", target)
    return _deployment(rows[0])


def deployment_status(s: FabricSession, deployment: DeploymentInfo) -> list[DeviceStatus]:
    """Every targeted device's status (the summary rows' details, one round trip)."""
    pipeline = [cmd("Get-CMSoftwareUpdateDeployment", DeploymentId=deployment.deployment_id),
                cmd("Get-CMSoftwareUpdateDeploymentStatus"), cmd("Get-CMDeploymentStatusDetails")]
    rows = _query(s, pipeline, DETAIL_FIELDS, cmdlet="Get-CMDeploymentStatusDetails", target=deployment.name)
    return [DeviceStatus(str(r.get("DeviceName") or ""), _int(r.get("ResourceID")), bool(_int(r.get("IsCompliant"))),
                         _int(r.get("StatusType")), str(r.get("StatusDescription") or ""), _int(r.get("StatusErrorCode")),
                         parse_date(r.get("StatusTime"))) for r in rows]


def device_status(s: FabricSession, deployment: DeploymentInfo, device: DeviceInfo | int) -> DeviceStatus | None:
    """One device's status for a deployment; None while the device is not (yet) targeted by it
    (not an effective member of its collection)."""
    return status_of(deployment_status(s, deployment), device)


def status_of(statuses: list[DeviceStatus], device: DeviceInfo | int) -> DeviceStatus | None:
    """The device's row of ``deployment_status`` (None: not targeted)."""
    rid = _resource_id(device)
    return next((d for d in statuses if d.resource_id == rid), None)


# -- per update -------------------------------------------------------------------------------
def list_updates(s: FabricSession, update_group_ci_id: int | None = None) -> list[SoftwareUpdateInfo]:
    """The updates of a software update group (by CI_ID, as ``DeploymentInfo.update_group_ci_id``), or all."""
    name = None
    if update_group_ci_id is not None:
        groups = [g for g in list_update_groups(s) if g.ci_id == int(update_group_ci_id)]
        if not groups:
            raise _not_found(s, f"no software update group has the CI_ID {update_group_ci_id}",
                             "Get-CMSoftwareUpdateGroup", str(update_group_ci_id))
        name = groups[0].name
    rows = _query(s, [cmd("Get-CMSoftwareUpdate", UpdateGroupName=name, Fast=True)], UPDATE_FIELDS,
                  cmdlet="Get-CMSoftwareUpdate", target=name or "")
    out = []
    for r in rows:
        article = str(r.get("ArticleID") or "")
        out.append(SoftwareUpdateInfo(_int(r.get("CI_ID")), article if article.upper().startswith("KB") else f"KB{article}",
                                      str(r.get("LocalizedDisplayName") or ""), _int(r.get("MaxExecutionTime"))))
    return out


def update_compliance(s: FabricSession, device: DeviceInfo | int) -> dict[int, UpdateCompliance]:
    """CI_ID -> the update's state on the device, from the SMS Provider (SMS_UpdateComplianceStatus).
    The filter holds only the device's integer ResourceID."""
    rid = int(_resource_id(device))
    namespace = "root\\SMS\\site_" + site_drive(s).rstrip(":")
    rows = parse_json_output(s.run([[cmd("Get-CimInstance", Namespace=namespace, ClassName="SMS_UpdateComplianceStatus",
                                         Filter=f"ResourceID = {rid}"), *select_json(*COMPLIANCE_FIELDS)]],
                                   cmdlet="Get-CimInstance", target=_label(device)).output)
    return {_int(r.get("CI_ID")): UpdateCompliance(_int(r.get("CI_ID")), COMPLIANCE_STATES.get(_int(r.get("Status")), "Unknown"),
                                                   _int(r.get("LastErrorCode")),
                                                   _int(r.get("LastEnforcementMessageID")) == MSG_PENDING_RESTART)
            for r in rows}


def pending_updates(s: FabricSession, deployment: DeploymentInfo, device: DeviceInfo | int) -> list[SoftwareUpdateInfo]:
    """The deployment's updates the device still needs (required, or installed and waiting for the
    restart): what a preflight shows and what "compliant" means when it is empty."""
    return still_required(list_updates(s, deployment.update_group_ci_id), update_compliance(s, device))


def still_required(updates: list[SoftwareUpdateInfo], states: dict[int, UpdateCompliance]) -> list[SoftwareUpdateInfo]:
    """``pending_updates`` from its two readings (made at once by a caller that needs both)."""
    return [u for u in updates if states.get(u.ci_id) is not None and states[u.ci_id].status == "Required"]
