"""The patching parts of a scenario (see scenario.py's docstring): updates, each host's pending
updates, volumes, network adapters and reboot time, and the ConfigMgr site (collections, update
groups, deployments; one device per host). Builds ``Fabric.patching`` (patching.py)."""
from __future__ import annotations

import uuid

from . import patching as P
from .jobs import utcnow


def load_scenario(f, data: dict) -> None:
    """Read the patching parts of a scenario (see scenario.py's docstring) into ``f.patching``."""
    w = f.patching
    for i, u in enumerate(data.get("updates", [])):
        w.updates[str(u["id"])] = P.Update(str(u["id"]), str(u.get("title", u["id"])), float(u.get("install_seconds", 120)),
                                         bool(u.get("restart", True)), int(u.get("ci_id", 16800000 + i)))
    host_specs = []
    for cl in data.get("clusters", []):
        host_specs += [(h, cl.get("pending_updates")) for h in cl.get("hosts", [])]
    host_specs += [(h, None) for h in data.get("hosts", [])]
    for spec, cluster_pending in host_specs:
        host = f.find_host(spec["name"])
        hp = w.host_state(host)
        if spec.get("volumes"):
            hp.volumes = [{"name": v["name"], "label": v.get("label", ""), "size_gb": float(v["size_gb"]),
                           "clustered": bool(v.get("clustered", False))} for v in spec["volumes"]]
        if spec.get("adapters"):
            hp.adapters = [{"name": a["name"], "mac": a.get("mac") or P.mac(host.name, i), "connected": True}
                           for i, a in enumerate(spec["adapters"], 1)]
        pending = spec.get("pending_updates", cluster_pending) or []
        for kb in pending:
            if kb not in w.updates:
                raise ValueError(f"scenario: host {host.name} needs unknown update {kb!r}")
        hp.pending = list(pending)
        hp.reboot_s = float(spec.get("reboot_seconds", data.get("reboot_seconds", P.DEFAULT_REBOOT_S)))
    cm = data.get("configmgr")
    if not cm:
        return
    w.site_code, w.site_server = cm.get("site_code", "CM1"), cm.get("server", "cm01." + f.domain)
    w.refresh_s = float(cm.get("collection_refresh_seconds", P.DEFAULT_REFRESH_S))
    for i, host in enumerate(sorted(f.hosts.values(), key=lambda h: h.name.lower())):
        dev = P.Device(P.FIRST_RESOURCE_ID + i, host.name, host.name.split(".")[0].upper())
        w.devices[dev.resource_id] = dev
    now = utcnow()
    all_ids = sorted(w.devices)
    w.collections["SMS00001"] = P.Collection("SMS00001", "All Systems", [], all_ids, now, now)
    for i, c in enumerate(cm.get("collections", [])):
        cid = c.get("id") or f"{w.site_code}{0x14 + i:05X}"
        rules = [device_by_name(w, n).resource_id for n in c.get("members", [])]
        w.collections[cid] = P.Collection(cid, c["name"], rules, list(rules), now, now, comment=c.get("comment", ""))
    for i, g in enumerate(cm.get("update_groups", [])):
        for kb in g.get("updates", []):
            if kb not in w.updates:
                raise ValueError(f"scenario: update group {g['name']!r} lists unknown update {kb!r}")
        grp = P.UpdateGroup(int(g.get("ci_id", 16777500 + i)), g["name"], list(g.get("updates", [])),
                          g.get("description", ""), now)
        w.groups[grp.ci_id] = grp
    for i, d in enumerate(cm.get("deployments", [])):
        grp = next((g for g in w.groups.values() if g.name.lower() == d["update_group"].lower()), None)
        coll = w.find_collection(name=d["collection"])
        if grp is None or coll is None:
            raise ValueError(f"scenario: deployment {d['name']!r} needs a known update group and collection")
        dep = P.Deployment(int(d.get("id", 16777600 + i)), d["name"],
                         "{" + str(uuid.uuid5(uuid.NAMESPACE_DNS, "dep:" + d["name"])).upper() + "}",
                         grp.ci_id, coll.id, bool(d.get("enabled", True)), now)
        w.deployments[dep.assignment_id] = dep


def device_by_name(w, name: str) -> "P.Device":
    short = str(name).split(".")[0].lower()
    for d in w.devices.values():
        if d.name.lower() == short:
            return d
    raise ValueError(f"scenario: no ConfigMgr device for {name!r}")
