"""Scenario files, the ``scale`` generator and state save/load.

A scenario (YAML or JSON; ``demo`` is ``scenarios/demo.yaml``)::

    vmm_server: vmm01.contoso.com
    scom_server: scom01.contoso.com
    domain: contoso.com                 # SCOM DisplayName of a VM = <name>.<domain>
    job_timings: {checkpoint: 4, live_migration: 6, ...}   # seconds (see fabric.DEFAULT_TIMINGS)
    clouds: [{name: Gold, description: ...}]
    user_roles:
      - {name: Contoso Tenants, profile: TenantAdmin, description: '', members: ['CONTOSO\\alice'],
         clouds: [Gold], permissions: {Gold: [Checkpoint, Start]}}   # or permissions: [Checkpoint] = every cloud
    clusters:
      - {name: CLU-A, hosts: [{name: hv-a01.contoso.com, memory_mb: 65536}, ...]}
    hosts:                              # standalone hosts (or `cluster: CLU-A` to join one)
      - {name: hv-s01.contoso.com, memory_mb: 65536}
    vms:
      - {name: web01, host: hv-a01, memory_mb: 4096, highly_available: true, status: Running,
         cloud: Gold, owner: 'CONTOSO\\alice', user_role: Contoso Tenants, description: '',
         custom: {Custom1: '1'}, custom_properties: {Application: Web},
         checkpoints: [{name: before-upgrade, description: '', age_days: 40, status: Running}]}
    faults: [{cmdlet: New-SCVMCheckpoint, target: web01, mode: fail, message: ..., times: 1}]

VM keys ``custom1`` .. ``custom10`` are accepted as well as ``custom: {Custom1: ...}``.
IDs are derived from names (uuid5), so they are the same every time a scenario is built.
Checkpoints are listed oldest first and chain (each one's parent is the previous).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import random
import tempfile
import uuid

from .access import PERMISSIONS
from .fabric import VM, Checkpoint, Cloud, Cluster, Fabric, Host, ScomInstance, UserRole
from .jobs import utcnow

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
_NS = uuid.UUID("5b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d")


def sid(kind: str, name: str) -> uuid.UUID:
    return uuid.uuid5(_NS, f"{kind}:{name.lower()}")


def load_file(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    if path.endswith(".json"):
        return json.loads(text)
    import yaml
    return yaml.safe_load(text) or {}


def build(name_or_path: str = "demo", vms: int | None = None, time_scale: float = 1.0) -> Fabric:
    if name_or_path == "scale":
        data = scale_scenario(vms or 1000)
    elif isinstance(name_or_path, dict):
        data = name_or_path
    else:
        path = name_or_path
        if not os.path.exists(path):
            for ext in (".yaml", ".yml", ".json"):
                cand = os.path.join(HERE, name_or_path + ext)
                if os.path.exists(cand):
                    path = cand
                    break
            else:
                raise ValueError(f"unknown scenario {name_or_path!r}")
        data = load_file(path)
    return from_data(data, time_scale)


def _ref(table: dict, name: str, what: str):
    for o in table.values():
        if o.name.lower() == str(name).lower():
            return o
    raise ValueError(f"scenario: unknown {what} {name!r}")


def from_data(data: dict, time_scale: float = 1.0) -> Fabric:
    f = Fabric(data.get("vmm_server", "vmm01.contoso.com"), data.get("scom_server", "scom01.contoso.com"),
               data.get("domain", "contoso.com"), data.get("job_timings"), time_scale)
    for c in data.get("clouds", []):
        f.add("clouds", Cloud(sid("cloud", c["name"]), c["name"], c.get("description", "")))
    for cl in data.get("clusters", []):
        cluster = f.add("clusters", Cluster(sid("cluster", cl["name"]), cl["name"]))
        for h in cl.get("hosts", []):
            _add_host(f, h, cluster.id)
    for h in data.get("hosts", []):
        cluster_id = _ref(f.clusters, h["cluster"], "cluster").id if h.get("cluster") else None
        _add_host(f, h, cluster_id)
    _add_user_roles(f, data.get("user_roles", []))
    now = utcnow()
    by_name = {}
    for h in f.hosts.values():
        by_name[h.name.lower()] = h
        by_name.setdefault(h.name.split(".")[0].lower(), h)
    for v in data.get("vms", []):
        host = by_name.get(str(v["host"]).lower()) or f.find_host(str(v["host"]))
        if host is None:
            raise ValueError(f"scenario: VM {v['name']!r} on unknown host {v['host']!r}")
        custom = [""] * 10
        for k, val in (v.get("custom") or {}).items():
            custom[int(str(k).lower().replace("custom", "")) - 1] = str(val)
        for i in range(10):
            if f"custom{i + 1}" in v:
                custom[i] = str(v[f"custom{i + 1}"])
        status = v.get("status", "Running")
        if status not in ("Running", "PowerOff", "Saved", "Paused"):
            raise ValueError(f"scenario: VM {v['name']!r} has unknown status {status!r}")
        vm = VM(sid("vm", v["name"]), v["name"], host.id, int(v.get("memory_mb", 2048)),
                bool(v.get("highly_available", host.cluster_id is not None)), status,
                cloud_id=_ref(f.clouds, v["cloud"], "cloud").id if v.get("cloud") else None,
                owner=v.get("owner", ""),
                user_role_id=_ref(f.roles, v["user_role"], "user role").id if v.get("user_role") else None,
                custom=custom, custom_properties=dict(v.get("custom_properties") or {}),
                description=v.get("description", ""), os=v.get("os", "Windows Server 2019 Datacenter"),
                cpu_count=int(v.get("cpu_count", 2)), vmid=sid("vmid", v["name"]),
                added=now - _dt.timedelta(days=float(v.get("age_days", 200))))
        vm.modified = vm.added
        f.add("vms", vm)
        parent = None
        for cp in v.get("checkpoints", []):
            age = _dt.timedelta(days=float(cp.get("age_days", 0)), hours=float(cp.get("age_hours", 0)))
            c = Checkpoint(sid("checkpoint", f"{vm.name}/{cp['name']}"), vm.id, cp["name"],
                           cp.get("description", ""), now - age, parent, cp.get("status", status))
            f.add_checkpoint(c)
            parent = c.id
        vm.current_checkpoint = parent
        f.add("scom", ScomInstance(sid("scom", vm.name), f"{vm.name}.{f.domain}" if f.domain else vm.name, "vm", vm.id))
    for h in f.hosts.values():
        f.add("scom", ScomInstance(sid("scom", "host:" + h.name), h.name, "host", h.id))
    for h in f.hosts.values():
        if f.used_mb(h) > h.memory_mb:
            raise ValueError(f"scenario: running VMs on {h.name} need {f.used_mb(h)} MB, host has {h.memory_mb} MB")
    if data.get("faults"):
        from .faults import FaultSet
        f.faults = FaultSet()
        for spec in data["faults"]:
            f.faults.add(spec)
    return f


def _add_user_roles(f, specs):
    """User roles: name, profile, description, members, clouds (the scope) and permissions
    (VMM UserActions names: per cloud as a mapping, or a list meaning every cloud of the scope)."""
    for r in specs:
        cloud_ids = [_ref(f.clouds, c, "cloud").id for c in r.get("clouds", [])]
        perms = r.get("permissions") or {}
        if isinstance(perms, list):
            perms = {c: list(perms) for c in r.get("clouds", [])}
        for names in perms.values():
            unknown = [p for p in names if p not in PERMISSIONS]
            if unknown:
                raise ValueError(f"scenario: user role {r['name']!r} has unknown permissions {unknown}")
        f.add("roles", UserRole(sid("role", r["name"]), r["name"], r.get("profile", "TenantAdmin"),
                                list(r.get("members", [])), cloud_ids,
                                {str(_ref(f.clouds, c, "cloud").id): list(p) for c, p in perms.items()},
                                description=r.get("description", "")))


def _add_host(f, h, cluster_id):
    f.add("hosts", Host(sid("host", h["name"]), h["name"], cluster_id, int(h.get("memory_mb", 65536)),
                        int(h.get("cpu_count", 32)), bool(h.get("maintenance", False))))


def scale_scenario(n: int, seed: int = 42) -> dict:
    """N VMs over ceil(N/20) hosts (clusters of 8, the last host standalone), deterministic."""
    rnd = random.Random(seed)
    nhosts = max(3, math.ceil(n / 20))
    hosts = [f"hv{i:04d}.contoso.com" for i in range(1, nhosts + 1)]
    standalone = hosts[-1:] if nhosts >= 4 else []
    clustered = hosts[:len(hosts) - len(standalone)]
    clusters = [{"name": f"CLU{i // 8 + 1:03d}", "hosts": [{"name": h, "memory_mb": 262144} for h in clustered[i:i + 8]]}
                for i in range(0, len(clustered), 8)]
    clouds = ["Gold", "Silver", "Bronze"]
    tenants = [("Contoso Tenants", "CONTOSO\\alice"), ("Fabrikam Tenants", "FABRIKAM\\carol"),
               ("Northwind Tenants", "NORTHWIND\\dave")]
    vms = []
    for i in range(n):
        host = hosts[i % nhosts]
        ci = rnd.randrange(3)
        r = rnd.random()
        vm = {"name": f"vm{i + 1:05d}", "host": host, "memory_mb": rnd.choice([1024, 2048, 4096, 8192]),
              "highly_available": host not in standalone and rnd.random() < 0.7,
              "status": "Running" if r < 0.6 else "PowerOff" if r < 0.9 else "Saved",
              "cloud": clouds[ci], "owner": tenants[ci][1], "user_role": tenants[ci][0],
              "custom1": str(rnd.randint(1, 4)), "age_days": rnd.randint(1, 900)}
        if rnd.random() < 0.15:
            vm["checkpoints"] = [{"name": f"cp-{j + 1}", "age_days": 30 * (2 - j)} for j in range(rnd.randint(1, 2))]
        vms.append(vm)
    return {"vmm_server": "vmm01.contoso.com", "scom_server": "scom01.contoso.com", "domain": "contoso.com",
            "clouds": [{"name": c} for c in clouds],
            "user_roles": [{"name": t, "members": [m], "clouds": [clouds[i]], "permissions": ["Checkpoint"]}
                           for i, (t, m) in enumerate(tenants)],
            "clusters": clusters, "hosts": [{"name": h, "memory_mb": 262144} for h in standalone], "vms": vms}


def save_state(fabric: Fabric, path: str) -> None:
    data = fabric.to_dict()
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".simstate-", dir=d)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def load_state(path: str) -> Fabric:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if data.get("format") != "slipway-sim-state/1":
        raise ValueError(f"{path}: not a simulator state file")
    return Fabric.from_dict(data)
