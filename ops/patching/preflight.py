"""The patch run's preflight: read-only, from the fabric, before anything moves.

Per node (in the order the run will take): its state, its VMs, the updates ConfigMgr says it
needs; the running VMs that are not highly available (the drain saves them: their users are
cut off), the stopped HA VMs, other runs that hold the cluster, its hosts or its VMs; and a
capacity check: for each node in turn, can the other nodes hold its running HA VMs by memory,
placed as VMM would (each VM, largest first, on the node with the most memory free).

``blockers`` refuse the start; ``warnings`` need the operator's confirmation by name
(``confirm=web06,app04`` on the command line and in the API, a tick per VM on the page).

The hold list (seed 004): the standalone hosts asked for (``hosts=``: they cannot be drained
within a cluster, so this run does not patch them) and, with ``non_ha=skip-node``, the nodes
whose running VMs are not highly available. The run puts each in ConfigMgr's holding
collection, to be handled separately; ``hold_collection`` names it, else the one collection
whose name says "hold".
"""
from __future__ import annotations

import dataclasses

from ..fabric import configmgr as cm, errors, vmm
from ..fabric.session import session_for


@dataclasses.dataclass
class NodeReport:
    name: str
    short: str
    state: str                    # "Responding", "NotResponding", ...
    in_maintenance: bool
    memory_mb: int
    available_mb: int
    vms: list                     # {"id","name","status","ha","memory_mb","owner","user_role"}
    updates: list                 # {"kb","title"}
    capacity_ok: bool = True
    capacity_note: str = ""

    @property
    def running_ha(self):
        return [v for v in self.vms if v["ha"] and v["status"] == "Running"]


@dataclasses.dataclass
class Preflight:
    cluster: str
    nodes: list
    order: list
    deployment: str
    blockers: list
    warnings: list               # {"vm","owner","user_role","node","text"}
    stopped_ha: list
    notes: list
    hold: list = dataclasses.field(default_factory=list)   # {"host","short","why"}
    hold_collection: str = ""

    def hold_text(self) -> str:
        return ", ".join(f"{h['short']} ({h['why']})" for h in self.hold)

    def warned_names(self) -> list[str]:
        return [w["vm"] for w in self.warnings]

    def as_dict(self) -> dict:
        return {"cluster": self.cluster, "order": self.order, "deployment": self.deployment,
                "blockers": self.blockers, "warnings": self.warnings, "stopped_ha": self.stopped_ha,
                "notes": self.notes, "hold": self.hold, "hold_collection": self.hold_collection,
                "nodes": [dataclasses.asdict(n) for n in self.nodes]}


def short(host: str) -> str:
    return host.split(".")[0]


def order_nodes(nodes: list, given: list[str]) -> list[str]:
    """The node order: as given (short names or full names), else fewest running VMs first."""
    by = {n.short.lower(): n for n in nodes} | {n.name.lower(): n for n in nodes}
    if given:
        return [by[g.lower()].name for g in given]
    return [n.name for n in sorted(nodes, key=lambda n: (sum(v["status"] == "Running" for v in n.vms), n.name))]


def place(vms: list, free: dict) -> list:
    """VMM's placement, simplified to what decides a drain: each VM, largest first, to the host with
    the most memory free; returns the VMs that fit nowhere."""
    free = dict(free)
    left = []
    for vm in sorted(vms, key=lambda v: -v["memory_mb"]):
        host = max(free, key=lambda h: free[h]) if free else None
        if host is None or free[host] < vm["memory_mb"]:
            left.append(vm)
            continue
        free[host] -= vm["memory_mb"]
    return left


def capacity(nodes: list, order: list) -> None:
    """Mark each node: can the nodes that stay up hold its running HA VMs?"""
    by = {n.name: n for n in nodes}
    for name in order:
        node = by[name]
        free = {n.name: n.available_mb for n in nodes if n.name != name and n.state == "Responding"}
        left = place(node.running_ha, free)
        if left:
            node.capacity_ok = False
            need = sum(v["memory_mb"] for v in left)
            node.capacity_note = (f"the other nodes cannot hold {', '.join(v['name'] for v in left)} "
                                  f"({need} MB) while {node.short} is drained")


def run(conn, cluster: str, cm_conn=None, deployment: str = "", order: list | None = None,
        active_runs=(), non_ha: str = "save", standalone=(), hold_collection: str = "") -> Preflight:
    """Read the fabric. ``active_runs``: (run id, title, holds, claims) of the runs active now."""
    s = session_for(conn)
    clusters = {c.name.lower(): c.name for c in vmm.list_clusters(s)}
    if cluster.lower() not in clusters:
        raise errors.NotFound(conn.name, f"no host cluster is named {cluster} (clusters: "
                              f"{', '.join(sorted(clusters.values())) or 'none'})", cmdlet="Get-SCVMHostCluster",
                              target=cluster)
    cluster = clusters[cluster.lower()]
    every_host = vmm.list_hosts(s)
    hosts = [h for h in every_host if h.cluster_name.lower() == cluster.lower()]
    vms = vmm.list_vms(s)
    nodes = []
    for h in sorted(hosts, key=lambda h: h.name.lower()):
        mine = [{"id": v.id, "name": v.name, "status": v.status, "ha": v.is_highly_available, "memory_mb": v.memory_mb,
                 "owner": v.owner, "user_role": v.user_role_name}
                for v in vms if v.host_name.lower() in (h.name.lower(), short(h.name).lower())]
        nodes.append(NodeReport(h.name, short(h.name), h.communication_state, h.in_maintenance, h.total_memory_mb,
                                h.available_memory_mb, sorted(mine, key=lambda v: v["name"].lower()), []))
    blockers, warnings, notes = [], [], []
    known = {n.short.lower() for n in nodes} | {n.name.lower() for n in nodes}
    bad = [g for g in (order or []) if g.lower() not in known]
    if bad:
        blockers.append(f"order: {', '.join(bad)} is not a node of {cluster} (nodes: {', '.join(n.short for n in nodes)})")
        order = []
    names = order_nodes(nodes, order or [])
    if len(nodes) < 2:
        blockers.append(f"cluster {cluster} has {len(nodes)} node(s): a rolling patch needs at least two")
    for n in nodes:
        if n.state != "Responding":
            blockers.append(f"node {n.short} is {n.state} in VMM: it cannot be drained or patched")
        if n.in_maintenance:
            blockers.append(f"node {n.short} is already in maintenance: find out why, then resume it first "
                            f"(runbook host-resume host={n.short}, or Resume on its host page)")
    for n in (n for n in nodes if n.name in names):   # a node left out of the order is not drained
        for v in n.vms:
            if not v["ha"] and v["status"] == "Running":
                who = ", ".join(x for x in (v["owner"], v["user_role"]) if x) or "no owner recorded"
                warnings.append({"vm": v["name"], "owner": v["owner"], "user_role": v["user_role"], "node": n.short,
                                 "text": f"{v['name']} on {n.short} is not highly available: the drain saves it and "
                                         f"its users are cut off until {n.short} is back ({who})"})
    hold = _standalone(every_host, standalone, blockers)
    if non_ha == "skip-node":  # a node with a running VM that is not HA is not drained: it waits on the hold list
        for node in sorted({w["node"] for w in warnings}):
            vms = ", ".join(w["vm"] for w in warnings if w["node"] == node)
            hold.append({"host": next(n.name for n in nodes if n.short == node), "short": node,
                         "why": f"not patched: {vms} running, not highly available"})
        skipped = {h["short"] for h in hold}
        warnings = [w for w in warnings if w["node"] not in skipped]
        names = [n for n in names if short(n) not in skipped]
        if nodes and not names:
            blockers.append(f"non_ha=skip-node: every node of {cluster} runs a VM that is not highly available; "
                            "nothing would be patched")
    capacity(nodes, names)  # a skipped node stays up: it is only a receiver
    blockers += [f"capacity: {n.capacity_note}" for n in nodes if not n.capacity_ok]
    stopped = [{"vm": v["name"], "node": n.short} for n in nodes for v in n.vms if v["ha"] and v["status"] != "Running"]
    ids = {v["id"].lower() for n in nodes for v in n.vms}
    holds = {f"cluster:{cluster}"} | {f"host:{n.name}" for n in nodes}
    for rid, title, their_holds, claims in active_runs:
        if holds & set(their_holds or ()):
            blockers.append(f"run {rid} ({title}) holds {cluster} or one of its nodes")
        elif ids & {c.lower() for c in claims or ()}:
            blockers.append(f"run {rid} ({title}) is acting on VMs of {cluster}")
    if cm_conn is not None and deployment.lower() != "none":
        c = session_for(cm_conn)
        dep = cm.get_deployment(c, name=deployment)
        for n in nodes:
            try:
                dev = cm.get_device(c, n.name)
            except errors.NotFound:
                blockers.append(f"node {n.short} is not a ConfigMgr device on {cm_conn.name}")
                continue
            n.updates = [{"kb": u.article_id, "title": u.title} for u in cm.pending_updates(c, dep, dev)]
        if not any(n.updates for n in nodes):
            notes.append(f"ConfigMgr says no node of {cluster} needs an update of {deployment}")
    collection = ""
    if hold and cm_conn is not None:
        collection = _hold_collection(session_for(cm_conn), cm_conn.name, hold, hold_collection, blockers)
    elif hold:
        notes.append(f"no ConfigMgr connection (hardware maintenance): {', '.join(h['short'] for h in hold)} "
                     "stay on the hold list of this run's outcome only")
    return Preflight(cluster, nodes, names, deployment, blockers, warnings, stopped, notes, hold, collection)


def _standalone(every_host, asked, blockers) -> list:
    """The hold list's standalone hosts, each one VMM has and that is in no cluster."""
    by = {h.name.lower(): h for h in every_host} | {short(h.name).lower(): h for h in every_host}
    out = []
    for name in asked:
        h = by.get(name.lower())
        if h is None:
            blockers.append(f"hosts: VMM has no host named {name}")
        elif h.cluster_name:
            blockers.append(f"hosts: {short(h.name)} is a node of {h.cluster_name}, not a standalone host: "
                            f"patch it with cluster={h.cluster_name}")
        elif h.name not in [x["host"] for x in out]:
            out.append({"host": h.name, "short": short(h.name), "why": "standalone host"})
    return out


def _hold_collection(c, server: str, hold: list, asked: str, blockers) -> str:
    """The holding collection's name: the one asked for, else the one whose name says "hold";
    every held host must be a ConfigMgr device."""
    for h in hold:
        try:
            cm.get_device(c, h["host"])
        except errors.NotFound:
            blockers.append(f"hosts: {h['short']} is not a ConfigMgr device on {server}: it cannot be held there")
    if asked:
        try:
            return cm.get_collection(c, asked).name
        except errors.NotFound:
            blockers.append(f"hold_collection: {server} has no device collection named {asked}")
            return asked
    found = [col.name for col in cm.list_collections(c) if "hold" in col.name.lower()]
    if len(found) == 1:
        return found[0]
    blockers.append(f"hold_collection: name the ConfigMgr collection for the hold list "
                    f"({', '.join(h['short'] for h in hold)}); {server} has {len(found)} whose name says hold"
                    + (f" ({', '.join(found)})" if found else ""))
    return ""


def lines(p: Preflight) -> list[str]:
    """The preflight as the command line prints it."""
    out = [f"Preflight of {p.cluster} (order: {', '.join(short(n) for n in p.order)}; deployment: {p.deployment})"]
    for n in sorted(p.nodes, key=lambda n: p.order.index(n.name) if n.name in p.order else 99):
        running = sum(v["status"] == "Running" for v in n.vms)
        kbs = ", ".join(u["kb"] for u in n.updates) or "none"
        out.append(f"  {n.short}: {n.state}{', in maintenance' if n.in_maintenance else ''}; {len(n.vms)} VMs "
                   f"({running} running, {len(n.running_ha)} HA to move); updates: {kbs}")
    out += [f"  BLOCKER: {b}" for b in p.blockers]
    out += [f"  WARNING: {w['text']}" for w in p.warnings]
    out += [f"  note: stopped HA VM {s['vm']} stays on {s['node']} while it is patched unless move_stopped_ha=true" for s in p.stopped_ha]
    if p.hold:
        where = f"ConfigMgr collection {p.hold_collection}" if p.hold_collection else "this run's outcome"
        out.append(f"  hold list ({where}): {p.hold_text()}")
    out += [f"  note: {x}" for x in p.notes]
    return out
