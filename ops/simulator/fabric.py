"""The simulated fabric: VMM server, clouds, user roles, clusters, hosts, VMs,
checkpoints, jobs and SCOM monitoring objects / maintenance windows.

One ``threading.RLock`` (``Fabric.lock``) guards everything; cmdlets hold it while they
read or change state and release it while a synchronous cmdlet waits for its job.
The VMM rules (what an operation may do, what its job does) live in ``operations.py``.

Memory: a host's ``memory_mb`` is what VMs may use. A VM uses its ``memory_mb`` while
it is Running or Paused (or Starting); PowerOff and Saved VMs use none.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import threading
import uuid

from .jobs import JobTable, utcnow

STABLE = ("Running", "PowerOff", "Saved", "Paused")
USES_MEMORY = ("Running", "Paused")

DEFAULT_TIMINGS = {  # seconds, before the time scale
    "start": 5.0, "stop": 3.0, "shutdown": 6.0, "save": 4.0, "checkpoint": 4.0, "restore": 5.0,
    "remove_checkpoint": 3.0, "live_migration": 6.0, "migration": 10.0, "host_maintenance": 2.0,
    "enable_host": 2.0, "user_role": 3.0, "set_vm": 0.0,
}


def _uuid(v) -> uuid.UUID:
    return v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))


def _dt_parse(v):
    if v is None or isinstance(v, _dt.datetime):
        return v
    return _dt.datetime.fromisoformat(str(v))


@dataclasses.dataclass
class Cloud:
    id: uuid.UUID
    name: str
    description: str = ""


@dataclasses.dataclass
class UserRole:
    id: uuid.UUID
    name: str
    profile: str = "TenantAdmin"
    members: list = dataclasses.field(default_factory=list)
    cloud_ids: list = dataclasses.field(default_factory=list)
    permissions: dict = dataclasses.field(default_factory=dict)  # str(cloud id) -> [perm]
    most_recent_job: uuid.UUID | None = None
    description: str = ""


@dataclasses.dataclass
class Cluster:
    id: uuid.UUID
    name: str


@dataclasses.dataclass
class Host:
    id: uuid.UUID
    name: str
    cluster_id: uuid.UUID | None
    memory_mb: int
    cpu_count: int = 32
    maintenance: bool = False
    most_recent_job: uuid.UUID | None = None


@dataclasses.dataclass
class Checkpoint:
    id: uuid.UUID
    vm_id: uuid.UUID
    name: str
    description: str
    added: _dt.datetime
    parent_id: uuid.UUID | None
    vm_status: str               # the VM's status when the checkpoint was taken
    most_recent_job: uuid.UUID | None = None


@dataclasses.dataclass
class VM:
    id: uuid.UUID
    name: str
    host_id: uuid.UUID
    memory_mb: int
    ha: bool
    status: str = "PowerOff"
    transient: str | None = None
    cloud_id: uuid.UUID | None = None
    owner: str = ""
    user_role_id: uuid.UUID | None = None
    custom: list = dataclasses.field(default_factory=lambda: [""] * 10)
    custom_properties: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    os: str = "Windows Server 2019 Datacenter"
    cpu_count: int = 2
    vmid: uuid.UUID = dataclasses.field(default_factory=uuid.uuid4)
    added: _dt.datetime = dataclasses.field(default_factory=utcnow)
    modified: _dt.datetime = dataclasses.field(default_factory=utcnow)
    current_checkpoint: uuid.UUID | None = None
    last_restored: uuid.UUID | None = None
    most_recent_job: uuid.UUID | None = None
    migrating: bool = False

    @property
    def shown_status(self) -> str:
        return self.transient or self.status

    @property
    def uses_memory(self) -> bool:
        return self.status in USES_MEMORY or self.transient == "Starting"


@dataclasses.dataclass
class ScomInstance:
    id: uuid.UUID
    display_name: str
    kind: str          # 'vm' | 'host'
    entity_id: uuid.UUID


@dataclasses.dataclass
class MaintEntry:
    id: uuid.UUID
    instance_id: uuid.UUID
    start: _dt.datetime
    scheduled_end: _dt.datetime
    reason: str
    comment: str
    user: str
    end: _dt.datetime | None = None
    modified: _dt.datetime = dataclasses.field(default_factory=utcnow)

    def active(self, now: _dt.datetime) -> bool:
        return self.end is None and self.scheduled_end > now


class Fabric:
    def __init__(self, vmm_server="vmm01.contoso.com", scom_server="scom01.contoso.com",
                 domain="contoso.com", timings=None, time_scale=1.0):
        self.lock = threading.RLock()
        self.vmm_server = vmm_server
        self.scom_server = scom_server
        self.domain = domain
        self.server_id = uuid.uuid5(uuid.NAMESPACE_DNS, vmm_server)
        self.timings = dict(DEFAULT_TIMINGS, **(timings or {}))
        self.time_scale = time_scale
        self.clouds: dict[uuid.UUID, Cloud] = {}
        self.roles: dict[uuid.UUID, UserRole] = {}
        self.clusters: dict[uuid.UUID, Cluster] = {}
        self.hosts: dict[uuid.UUID, Host] = {}
        self.vms: dict[uuid.UUID, VM] = {}
        self.checkpoints: dict[uuid.UUID, Checkpoint] = {}
        self.scom: dict[uuid.UUID, ScomInstance] = {}
        self.maint: dict[uuid.UUID, MaintEntry] = {}
        self.jobs = JobTable()
        self.faults = None   # set by the engine (faults.FaultSet)
        self._by_name: dict[str, dict] = {}
        self._vms_by_host: dict[uuid.UUID, set] | None = None
        self._cps_by_vm: dict[uuid.UUID, list] | None = None
        self.refs: dict = {}  # entity id -> cached reference SimObject (objects.py)

    # ---- time ----------------------------------------------------------------------------
    def duration(self, kind: str) -> float:
        return float(self.timings.get(kind, 3.0)) * self.time_scale

    def advance(self) -> None:
        self.jobs.advance()

    # ---- building ------------------------------------------------------------------------
    def add(self, table: str, obj):
        getattr(self, table)[obj.id] = obj
        if table == "vms":
            self._vms_by_host = None
        elif table == "checkpoints":
            self._cps_by_vm = None
        return obj

    def invalidate(self):
        self._vms_by_host = None

    # ---- lookups -------------------------------------------------------------------------
    def vms_on(self, host_id) -> list[VM]:
        if self._vms_by_host is None:
            idx: dict = {}
            for vm in self.vms.values():
                idx.setdefault(vm.host_id, set()).add(vm.id)
            self._vms_by_host = idx
        return sorted((self.vms[i] for i in self._vms_by_host.get(host_id, ())), key=lambda v: v.name.lower())

    def move_vm(self, vm: VM, host: Host):
        vm.host_id = host.id
        vm.modified = utcnow()
        self._vms_by_host = None

    def nodes(self, cluster_id) -> list[Host]:
        return sorted((h for h in self.hosts.values() if h.cluster_id == cluster_id), key=lambda h: h.name.lower())

    def used_mb(self, host: Host) -> int:
        return sum(v.memory_mb for v in self.vms_on(host.id) if v.uses_memory)

    def free_mb(self, host: Host) -> int:
        return host.memory_mb - self.used_mb(host)

    def checkpoints_of(self, vm_id) -> list[Checkpoint]:
        if self._cps_by_vm is None:
            idx: dict = {}
            for c in self.checkpoints.values():
                idx.setdefault(c.vm_id, []).append(c)
            for lst in idx.values():
                lst.sort(key=lambda c: c.added)
            self._cps_by_vm = idx
        return list(self._cps_by_vm.get(vm_id, ()))

    def add_checkpoint(self, cp: Checkpoint) -> None:
        self.checkpoints[cp.id] = cp
        self._cps_by_vm = None

    def remove_checkpoint(self, cp_id) -> None:
        self.checkpoints.pop(cp_id, None)
        self.refs.pop(("checkpoint", cp_id), None)
        self._cps_by_vm = None

    def host_matches(self, host: Host, name: str) -> bool:
        n = name.lower()
        hn = host.name.lower()
        return hn == n or hn.split(".")[0] == n.split(".")[0] and ("." not in n or "." not in hn)

    def find_host(self, name: str) -> Host | None:
        for h in self.hosts.values():
            if self.host_matches(h, name):
                return h
        return None

    def find_vm(self, name: str) -> VM | None:
        for v in self.vms.values():
            if v.name.lower() == name.lower():
                return v
        return None

    def find_by_name(self, table: str, name: str):
        for o in getattr(self, table).values():
            if o.name.lower() == name.lower():
                return o
        return None

    def scom_for(self, kind: str, entity_id) -> ScomInstance | None:
        for s in self.scom.values():
            if s.kind == kind and s.entity_id == entity_id:
                return s
        return None

    def active_maint(self, instance_id) -> MaintEntry | None:
        now = utcnow()
        for m in self.maint.values():
            if m.instance_id == instance_id and m.active(now):
                return m
        return None

    # ---- persistence ---------------------------------------------------------------------
    def to_dict(self) -> dict:
        def dump(o):
            d = dataclasses.asdict(o)
            for k, v in list(d.items()):
                if isinstance(v, uuid.UUID):
                    d[k] = str(v)
                elif isinstance(v, _dt.datetime):
                    d[k] = v.isoformat()
                elif isinstance(v, list):
                    d[k] = [str(x) if isinstance(x, uuid.UUID) else x for x in v]
            return d
        with self.lock:
            self.advance()
            return {
                "format": "slipway-sim-state/1",
                "vmm_server": self.vmm_server, "scom_server": self.scom_server, "domain": self.domain,
                "timings": self.timings, "time_scale": self.time_scale,
                "clouds": [dump(o) for o in self.clouds.values()],
                "roles": [dump(o) for o in self.roles.values()],
                "clusters": [dump(o) for o in self.clusters.values()],
                "hosts": [dump(o) for o in self.hosts.values()],
                "vms": [dump(o) for o in self.vms.values()],
                "checkpoints": [dump(o) for o in self.checkpoints.values()],
                "scom": [dump(o) for o in self.scom.values()],
                "maint": [dump(o) for o in self.maint.values()],
                "jobs": [self.jobs.jobs[j].to_dict() for j in self.jobs.order],
            }

    @classmethod
    def from_dict(cls, d: dict) -> "Fabric":
        f = cls(d["vmm_server"], d["scom_server"], d.get("domain", ""), d.get("timings"), d.get("time_scale", 1.0))
        uuid_fields = {"id", "vm_id", "host_id", "cluster_id", "cloud_id", "user_role_id", "parent_id",
                       "vmid", "current_checkpoint", "last_restored", "most_recent_job", "entity_id",
                       "instance_id"}
        dt_fields = {"added", "modified", "start", "scheduled_end", "end"}

        def load(kls, raw):
            kw = {}
            for k, v in raw.items():
                if k in uuid_fields and v is not None:
                    v = _uuid(v)
                elif k in dt_fields:
                    v = _dt_parse(v)
                elif k == "cloud_ids":
                    v = [_uuid(x) for x in v]
                kw[k] = v
            if kls is VM and kw.get("transient"):
                kw["transient"] = None  # a transient state cannot survive a restart
            if kls is VM:
                kw["migrating"] = False
            return kls(**kw)
        for table, kls in (("clouds", Cloud), ("roles", UserRole), ("clusters", Cluster), ("hosts", Host),
                           ("vms", VM), ("checkpoints", Checkpoint), ("scom", ScomInstance),
                           ("maint", MaintEntry)):
            for raw in d.get(table, []):
                f.add(table, load(kls, raw))
        from .jobs import Job
        for raw in d.get("jobs", []):
            job = Job.from_dict(raw)
            f.jobs.jobs[job.id] = job
            f.jobs.order.append(job.id)
        return f
