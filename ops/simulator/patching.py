"""Patching in the simulated fabric: host hardware and updates (the VMM side) and a ConfigMgr
site (collections, devices, software update groups and deployments, per-device status).

Everything here lives in ``Fabric.patching`` (a ``PatchWorld``), is guarded by ``Fabric.lock``,
advances lazily on every read (``advance(f)``, called from ``Fabric.advance``) and persists in the
state file. Deadlines are wall-clock datetimes, so a reboot or an install in progress survives a
restart of the simulator. Durations are scenario seconds times ``Fabric.time_scale``.

The rules (seed 004, ``notes/configmgr-patching.md`` in the shared notes):

- A device is a host's ConfigMgr client: Name = the host's short name in capitals, ResourceID
  from 16777220 up. Collections have direct membership rules; ``request_refresh`` makes the
  rules effective when the refresh ends (``refresh`` seconds): then ``LastRefreshTime`` changes.
  Collections whose ID starts with SMS (All Systems) take no rules.
- ``request_policy`` (Invoke-CMClientAction ... MachinePolicyNow) on a device that is online and
  an effective member of an enabled deployment's target collection starts that deployment: the
  device installs, one after the other, each update of the deployment's group that the host still
  needs (its ``install`` seconds each). Then: any update failed -> StatusType 5 with its error
  code; else any installed update needs a restart -> StatusType 2 "Pending system restart"; else
  StatusType 1 Compliant. Without a policy request nothing is installed.
- ``begin_reboot`` (Restart-SCVMHost, or ClientNotificationRebootMachine): the host does not
  respond for its ``reboot`` seconds; every VM still running (or paused) on it goes off
  (PowerOff). When it is back, updates that waited for the restart count as installed and a
  device that was pending restart reports Compliant (or Error if an update failed). A reboot cuts
  off an install in progress (that deployment shows no status until the client is asked again),
  and a rebooting node takes no VM from a drain (operations.py).
- Faults (faults.py) are events here: ``Install-Update`` (target: host or KB; ``fail`` with
  ``code``, or ``hang``), ``Host-Reboot`` (target: host; ``hang`` = never comes back,
  ``lose_adapter`` with ``adapter``, ``resize_volume`` with ``volume`` and ``size_gb``).
  ``clear_faults`` lets hung installs finish and stuck hosts come back.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib

from .jobs import utcnow

GB = 1024 ** 3
FIRST_RESOURCE_ID = 16777220
DEFAULT_REBOOT_S = 90.0
DEFAULT_REFRESH_S = 15.0

# per-device deployment states -> (StatusType, StatusDescription, StatusEnforcementState)
STATES = {
    "unknown": (4, "Unknown", 0),
    "installing": (2, "Installing updates", 1),
    "pending_restart": (2, "Pending system restart", 5),
    "failed": (5, "Failed to install the updates", 6),
    "compliant": (1, "Compliant", 4),
}


def _dt_load(v):
    return None if v in (None, "") else _dt.datetime.fromisoformat(v)


def _dt_dump(v):
    return v.isoformat() if isinstance(v, _dt.datetime) else v


@dataclasses.dataclass
class Update:
    id: str                 # the KB, e.g. KB5048661
    title: str
    install_s: float = 120.0
    restart: bool = True
    ci_id: int = 0


@dataclasses.dataclass
class HostPatch:
    """What VMM shows of a host's hardware, and the host's update and reboot state."""
    host: str                                                      # host name (persisted by name)
    volumes: list = dataclasses.field(default_factory=list)        # {name, label, size_gb, clustered}
    adapters: list = dataclasses.field(default_factory=list)       # {name, mac, connected}
    pending: list = dataclasses.field(default_factory=list)        # KBs not installed yet
    awaiting_restart: list = dataclasses.field(default_factory=list)  # installed, effective after a restart
    reboot_s: float = DEFAULT_REBOOT_S
    reboot_until: _dt.datetime | None = None
    stuck: bool = False                                            # a reboot that never ends (fault)
    on_return: list = dataclasses.field(default_factory=list)      # hardware changes when it is back
    last_boot: _dt.datetime | None = None

    def rebooting(self, now) -> bool:
        return self.stuck or (self.reboot_until is not None and now < self.reboot_until)


@dataclasses.dataclass
class Device:
    resource_id: int
    host: str
    name: str
    last_policy_request: _dt.datetime | None = None


@dataclasses.dataclass
class Collection:
    id: str
    name: str
    rules: list = dataclasses.field(default_factory=list)     # resource IDs (direct membership rules)
    members: list = dataclasses.field(default_factory=list)   # effective members (after a refresh)
    last_refresh: _dt.datetime | None = None
    last_member_change: _dt.datetime | None = None
    refresh_due: _dt.datetime | None = None
    comment: str = ""

    @property
    def builtin(self) -> bool:
        return self.id.upper().startswith("SMS")


@dataclasses.dataclass
class UpdateGroup:
    ci_id: int
    name: str
    updates: list = dataclasses.field(default_factory=list)   # KBs
    description: str = ""
    created: _dt.datetime | None = None


@dataclasses.dataclass
class Deployment:
    assignment_id: int
    name: str
    unique_id: str
    group_ci_id: int
    collection_id: str
    enabled: bool = True
    created: _dt.datetime | None = None
    suppress_reboot: bool = True   # servers: the runbook restarts them (Restart-SCVMHost)


@dataclasses.dataclass
class DeviceRun:
    """One device working through one deployment."""
    resource_id: int
    assignment_id: int
    state: str = "installing"
    queue: list = dataclasses.field(default_factory=list)        # KBs still to install, in order
    current: str = ""
    current_end: _dt.datetime | None = None                      # None while hung
    current_fail: int = 0                                        # error code the current install ends with
    results: dict = dataclasses.field(default_factory=dict)      # KB -> error code (0 = installed)
    error_code: int = 0
    status_time: _dt.datetime | None = None


class PatchWorld:
    def __init__(self):
        self.updates: dict[str, Update] = {}
        self.hosts: dict[str, HostPatch] = {}          # host name (lower) -> HostPatch
        self.site_code = "CM1"
        self.site_server = ""
        self.refresh_s = DEFAULT_REFRESH_S
        self.devices: dict[int, Device] = {}
        self.collections: dict[str, Collection] = {}
        self.groups: dict[int, UpdateGroup] = {}
        self.deployments: dict[int, Deployment] = {}
        self.runs: dict[tuple, DeviceRun] = {}         # (resource id, assignment id) -> DeviceRun

    @property
    def empty(self) -> bool:
        return not (self.updates or self.hosts or self.devices)

    # ---- lookups -------------------------------------------------------------------------
    def host_state(self, host) -> HostPatch:
        hp = self.hosts.get(host.name.lower())
        if hp is None:
            hp = self.hosts[host.name.lower()] = default_host(host.name, host.cluster_id is not None)
        return hp

    def rebooting(self, host, now=None) -> bool:
        hp = self.hosts.get(host.name.lower())
        return hp is not None and hp.rebooting(now or utcnow())

    def device_for_host(self, host_name: str) -> Device | None:
        for d in self.devices.values():
            if d.host.lower() == host_name.lower():
                return d
        return None

    def find_collection(self, name=None, coll_id=None) -> Collection | None:
        for c in self.collections.values():
            if (coll_id and c.id.lower() == str(coll_id).lower()) or (name and c.name.lower() == str(name).lower()):
                return c
        return None

    def deployment_members(self, dep: Deployment) -> list[Device]:
        coll = self.collections.get(dep.collection_id)
        return [self.devices[r] for r in (coll.members if coll else []) if r in self.devices]

    def device_state(self, dev: Device, dep: Deployment) -> DeviceRun | None:
        return self.runs.get((dev.resource_id, dep.assignment_id))

    # ---- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        def dump(o):
            return {k: _dt_dump(v) for k, v in dataclasses.asdict(o).items()}
        return {"updates": [dump(u) for u in self.updates.values()],
                "hosts": [dump(h) for h in self.hosts.values()],
                "site_code": self.site_code, "site_server": self.site_server, "refresh_s": self.refresh_s,
                "devices": [dump(d) for d in self.devices.values()],
                "collections": [dump(c) for c in self.collections.values()],
                "groups": [dump(g) for g in self.groups.values()],
                "deployments": [dump(d) for d in self.deployments.values()],
                "runs": [dump(r) for r in self.runs.values()]}

    @classmethod
    def from_dict(cls, d: dict | None) -> "PatchWorld":
        w = cls()
        if not d:
            return w
        dt_keys = {"reboot_until", "last_boot", "last_policy_request", "last_refresh", "last_member_change",
                   "refresh_due", "created", "current_end", "status_time"}

        def load(kls, raw):
            return kls(**{k: (_dt_load(v) if k in dt_keys else v) for k, v in raw.items()})
        w.site_code, w.site_server = d.get("site_code", "CM1"), d.get("site_server", "")
        w.refresh_s = float(d.get("refresh_s", DEFAULT_REFRESH_S))
        for raw in d.get("updates", []):
            u = load(Update, raw)
            w.updates[u.id] = u
        for raw in d.get("hosts", []):
            h = load(HostPatch, raw)
            w.hosts[h.host.lower()] = h
        for raw in d.get("devices", []):
            dev = load(Device, raw)
            w.devices[dev.resource_id] = dev
        for raw in d.get("collections", []):
            c = load(Collection, raw)
            w.collections[c.id] = c
        for raw in d.get("groups", []):
            g = load(UpdateGroup, raw)
            w.groups[g.ci_id] = g
        for raw in d.get("deployments", []):
            dep = load(Deployment, raw)
            w.deployments[dep.assignment_id] = dep
        for raw in d.get("runs", []):
            r = load(DeviceRun, raw)
            r.results = {k: int(v) for k, v in r.results.items()}
            w.runs[(r.resource_id, r.assignment_id)] = r
        return w


def mac(name: str, i: int) -> str:
    h = hashlib.sha1(f"{name}:{i}".encode()).hexdigest()[:8].upper()
    return "00-15-5D-" + "-".join(h[j:j + 2] for j in range(0, 6, 2))


def default_host(name: str, clustered: bool) -> HostPatch:
    vols = [{"name": "C:\\", "label": "OS", "size_gb": 278, "clustered": False}]
    if clustered:
        vols.append({"name": "C:\\ClusterStorage\\Volume1", "label": "CSV1", "size_gb": 4096, "clustered": True})
    else:
        vols.append({"name": "D:\\", "label": "VMs", "size_gb": 1788, "clustered": False})
    adapters = [{"name": f"NIC{i}", "mac": mac(name, i), "connected": True} for i in (1, 2)]
    return HostPatch(name, vols, adapters)


# ---- scenario ------------------------------------------------------------------------------
# ---- time ----------------------------------------------------------------------------------
def _later(f, seconds: float, now=None) -> _dt.datetime:
    return (now or utcnow()) + _dt.timedelta(seconds=float(seconds) * f.time_scale)


def advance(f) -> None:
    """Apply everything whose time has come (called under ``f.lock`` before every read or write)."""
    w = f.patching
    now = utcnow()
    for c in w.collections.values():
        if c.refresh_due is not None and c.refresh_due <= now:
            _finish_refresh(c, w)
    for hp in w.hosts.values():
        if hp.reboot_until is not None and not hp.stuck and hp.reboot_until <= now:
            _back_from_reboot(f, hp)
    for run in list(w.runs.values()):
        while run.state == "installing" and run.current_end is not None and run.current_end <= now:
            _finish_update(f, run)


def _finish_refresh(c: Collection, w: PatchWorld) -> None:
    members = [r for r in c.rules if r in w.devices]
    if sorted(members) != sorted(c.members):
        c.last_member_change = c.refresh_due
    c.members = members
    c.last_refresh = c.refresh_due
    c.refresh_due = None


def request_refresh(f, c: Collection) -> None:
    if c.refresh_due is None:
        c.refresh_due = _later(f, f.patching.refresh_s)


# ---- installs ------------------------------------------------------------------------------
def request_policy(f, dev: Device) -> None:
    """The client asks for machine policy: each deployment it is now targeted by starts."""
    w = f.patching
    host = f.find_host(dev.host)
    now = utcnow()
    if host is None or w.rebooting(host, now):
        return  # an offline client gets no notification
    dev.last_policy_request = now
    hp = w.host_state(host)
    for dep in w.deployments.values():
        if not dep.enabled or dev.resource_id not in w.collections.get(dep.collection_id, Collection("", "")).members:
            continue
        run = w.runs.get((dev.resource_id, dep.assignment_id))
        if run is not None and run.state in ("installing", "pending_restart"):
            continue
        group = w.groups.get(dep.group_ci_id)
        needed = [kb for kb in (group.updates if group else []) if kb in hp.pending]
        run = DeviceRun(dev.resource_id, dep.assignment_id, queue=needed, status_time=now)
        w.runs[(dev.resource_id, dep.assignment_id)] = run
        _next_update(f, run, hp, now)


def _next_update(f, run: DeviceRun, hp: HostPatch, now) -> None:
    if not run.queue:
        _settle(run, hp, now)
        return
    kb = run.queue.pop(0)
    upd = f.patching.updates[kb]
    run.state, run.current, run.current_fail = "installing", kb, 0
    run.current_end = _later(f, upd.install_s, now)
    fault = f.faults.take("Install-Update", [hp.host, kb]) if f.faults is not None else None
    if fault is not None:
        if fault.mode == "hang":
            run.current_end = None
        else:
            run.current_fail = fault.code


def _finish_update(f, run: DeviceRun) -> None:
    w = f.patching
    dev = w.devices[run.resource_id]
    hp = w.hosts[dev.host.lower()]
    end = run.current_end
    kb = run.current
    run.results[kb] = run.current_fail
    if run.current_fail == 0 and kb in hp.pending:
        hp.pending.remove(kb)
        if w.updates[kb].restart:
            hp.awaiting_restart.append(kb)
    run.current, run.current_end = "", None
    _next_update(f, run, hp, end)


def _settle(run: DeviceRun, hp: HostPatch, now) -> None:
    failed = [code for code in run.results.values() if code]
    if failed:
        run.state, run.error_code = "failed", failed[0]
    elif any(kb in hp.awaiting_restart for kb in run.results):
        run.state = "pending_restart"
    else:
        run.state = "compliant"
    run.status_time = now


def release_faults(f) -> None:
    """``clear_faults``: hung installs go on, hosts stuck in a reboot come back."""
    now = utcnow()
    for run in f.patching.runs.values():
        if run.state == "installing" and run.current_end is None:
            run.current_end = _later(f, f.patching.updates[run.current].install_s, now)
    for hp in f.patching.hosts.values():
        if hp.stuck:
            hp.stuck = False
            hp.reboot_until = now
    advance(f)


# ---- reboots -------------------------------------------------------------------------------
def begin_reboot(f, host) -> None:
    w = f.patching
    hp = w.host_state(host)
    now = utcnow()
    for vm in f.vms_on(host.id):
        if vm.status in ("Running", "Paused") or vm.transient:
            vm.status, vm.transient, vm.migrating, vm.modified = "PowerOff", None, False, now
    hp.reboot_until = _later(f, hp.reboot_s, now)
    hp.on_return = []
    dev = w.device_for_host(host.name)
    for key, run in list(w.runs.items()):
        if dev is not None and run.resource_id == dev.resource_id and run.state == "installing":
            del w.runs[key]   # the install was cut off: no status until the client is asked again
    fault = f.faults.take("Host-Reboot", [host.name]) if f.faults is not None else None
    if fault is not None:
        if fault.mode == "hang":
            hp.stuck = True
        else:
            hp.on_return.append(dict(fault.detail, mode=fault.mode))


def _back_from_reboot(f, hp: HostPatch) -> None:
    for change in hp.on_return:
        if change["mode"] == "lose_adapter":
            name = change.get("adapter") or (hp.adapters[-1]["name"] if hp.adapters else "")
            hp.adapters = [a for a in hp.adapters if a["name"].lower() != str(name).lower()]
        elif change["mode"] == "resize_volume":
            name = change.get("volume") or hp.volumes[-1]["name"]
            for v in hp.volumes:
                if v["name"].lower() == str(name).lower():
                    v["size_gb"] = float(change.get("size_gb") or v["size_gb"] / 2)
    hp.on_return = []
    hp.last_boot, hp.reboot_until = hp.reboot_until, None
    restarted = set(hp.awaiting_restart)
    hp.awaiting_restart = []
    w = f.patching
    dev = w.device_for_host(hp.host)
    if dev is None:
        return
    for run in w.runs.values():
        if run.resource_id == dev.resource_id and run.state == "pending_restart" and restarted:
            run.state, run.status_time = "compliant", hp.last_boot


def host_is_down(f, host) -> bool:
    return f.patching.rebooting(host)


def state(f) -> dict:
    """The control endpoint's view (``state``): per host what it needs and whether it responds, per
    collection its members; durations in scenario seconds (multiply by ``time_scale``)."""
    w = f.patching
    now = utcnow()
    hosts = {}
    for hp in sorted(w.hosts.values(), key=lambda h: h.host.lower()):
        hosts[hp.host] = {"responding": not hp.rebooting(now), "pending_updates": list(hp.pending),
                          "awaiting_restart": list(hp.awaiting_restart),
                          "install_s": sum(w.updates[kb].install_s for kb in hp.pending if kb in w.updates),
                          "reboot_s": hp.reboot_s, "adapters": [a["name"] for a in hp.adapters],
                          "volumes": {v["name"]: v["size_gb"] for v in hp.volumes}}
    collections = {c.name: sorted(w.devices[r].name for r in c.members if r in w.devices)
                   for c in w.collections.values()}
    return {"site_code": w.site_code if w.devices else None, "collection_refresh_s": w.refresh_s,
            "hosts": hosts, "collections": collections}
