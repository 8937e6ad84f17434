"""A patch run's report, in the spirit of Cluster-Aware Updating's: per node a result, each update
with ConfigMgr's own result code, the VMs moved off and brought back, how long each saved VM was
down, the reboot, and whether the node was left in maintenance.

Everything comes from what the run recorded as it went (its steps and the runbook's data,
ops/runbooks/patch_steps.py: ``record:``, ``updates:``, ``patched:``, ``away:``, ``maintenance:``),
never from what the plan intended. The run page (``ops:run_report``), its CSV
(``ops:run_report_csv``) and the API (``/api/v1/runs/{id}/report/``) all show this one object.

A node is
- Succeeded: patched (compliant, the same volumes and adapters as before) and every VM home;
- PartiallyFailed: patched, but a VM is not home or the node is still in maintenance;
- Failed: a step of its block failed (the install, the reboot, the consistency check ...);
- Canceled: not patched and nothing failed: skipped by the operator, excluded by ``non_ha=skip-node``,
  or not reached because the run stopped first;
- InProgress: the run is still working on it.
"""
from __future__ import annotations

import dataclasses

from ..models import Run, Step
from ..runbooks.base import own
from .preflight import short

CSV_HEADER = ["run", "cluster", "node", "node_result", "reason", "update", "title", "update_result", "result_code",
              "vms_moved", "vms_returned", "vms_not_home", "saved_vm", "saved_vm_down_s", "reboot_s",
              "left_in_maintenance"]


@dataclasses.dataclass
class NodeResult:
    node: str
    result: str
    reason: str = ""
    updates: list = dataclasses.field(default_factory=list)       # {article_id, title, result, result_code}
    moved: list = dataclasses.field(default_factory=list)         # VM names taken off the node
    returned: list = dataclasses.field(default_factory=list)      # VM names brought back, verified by the step
    not_home: list = dataclasses.field(default_factory=list)      # "name on host" / "name Saved"
    saved: list = dataclasses.field(default_factory=list)         # {name, down_s}: down_s None while still down
    reboot_s: float | None = None
    maintenance: str = ""                                          # why it is still in maintenance


@dataclasses.dataclass
class Report:
    run: int
    cluster: str
    state: str
    final: bool
    started: str | None
    finished: str | None
    summary: str
    nodes: list

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def csv_rows(self):
        yield CSV_HEADER
        for n in self.nodes:
            base = [self.run, self.cluster, n.node, n.result, n.reason]
            tail_vms = [len(n.moved), len(n.returned), "; ".join(n.not_home)]
            tail_node = [n.reboot_s if n.reboot_s is not None else "", n.maintenance]
            lines = [[u["article_id"], u["title"], u["result"], u["result_code"]] for u in n.updates] or [["", "", "", ""]]
            saved = n.saved or [{"name": "", "down_s": ""}]
            for i in range(max(len(lines), len(saved))):
                upd = lines[i] if i < len(lines) else ["", "", "", ""]
                sv = saved[i] if i < len(saved) else {"name": "", "down_s": ""}
                down = "still down" if sv["name"] and sv["down_s"] is None else sv["down_s"]
                yield base + upd + tail_vms + [sv["name"], down] + tail_node


def _hex(code: int) -> str:
    return f"0x{int(code) & 0xFFFFFFFF:08X}"


def update_result(u: dict) -> str:
    if "status" not in u:
        return "NotAttempted"
    if u["status"] == "Installed":
        return "PendingRestart" if u.get("pending_restart") else "Succeeded"
    if u["status"] == "NotRequired":
        return "NotRequired"
    if u["status"] == "Required":
        return "Failed" if u.get("error_code") else "NotInstalled"
    return u["status"]


def _seconds(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 1)


def _node_result(run, s, steps, mine, eng) -> NodeResult:
    block = f"node {s}"
    record = mine.get(f"record:{s}") or {}
    vms = record.get("vms") or []
    updates = [{"article_id": u["article_id"], "title": u["title"], "result": update_result(u),
                "result_code": _hex(u.get("error_code", 0)) if "status" in u else ""}
               for u in (mine.get(f"updates:{s}") or record.get("updates") or [])]
    mine_steps = [st for st in steps if st.phase.endswith("@" + s)]
    ok = Step.State.SUCCEEDED
    homes = {st.target_id.lower(): st for st in mine_steps if st.action == "home"}
    parked = [st.target for st in mine_steps if st.action == "park" and st.state == ok]
    moved = [v["name"] for v in vms if v["ha"] and v["status"] == "Running"] + parked
    returned = [v["name"] for v in vms if v["name"] in moved and homes.get(v["id"].lower()) is not None
                and homes[v["id"].lower()].state == ok]
    drain = next((st for st in mine_steps if st.action == "drain"), None)
    saved = []
    for v in vms:
        if v["ha"] or v["status"] != "Running":
            continue
        home = homes.get(v["id"].lower())
        end = home.finished_at if home is not None and home.state == ok else None
        saved.append({"name": v["name"], "down_s": _seconds(drain.started_at if drain else None, end)})
    reboot = next((st for st in mine_steps if st.action == "reboot"), None)
    back = next((st for st in mine_steps if st.action == "back" and st.state == ok), None)
    reboot_s = (_seconds(reboot.started_at, back.finished_at)
                if reboot is not None and reboot.state == ok and back is not None else None)
    out = NodeResult(s, "", updates=updates, moved=moved, returned=returned, not_home=list(mine.get(f"away:{s}") or []),
                     saved=saved, reboot_s=reboot_s, maintenance=mine.get(f"maintenance:{s}") or "")
    errors_by = eng.get("block_errors") or {}
    if s in [short(n) for n in run.params.get("skipped_nodes") or []]:
        out.result, out.reason = "Canceled", "not patched: it runs VMs that are not highly available (non_ha=skip-node)"
    elif block in (eng.get("skipped_blocks") or []):
        out.result, out.reason = "Canceled", f"skipped by the operator: {errors_by.get(block, '')}".rstrip(": ")
    elif block in (eng.get("failed_blocks") or []):
        out.result, out.reason = "Failed", errors_by.get(block, "a step failed")
    elif block not in (eng.get("blocks_begun") or []):
        out.result = "InProgress" if run.state in Run.ACTIVE_STATES else "Canceled"
        out.reason = "not started yet" if out.result == "InProgress" else "not reached: the run stopped before this node"
    elif mine.get(f"patched:{s}"):
        if out.not_home or out.maintenance:
            why = [f"VMs not home: {', '.join(out.not_home)}"] if out.not_home else []
            why += [f"still in maintenance: {out.maintenance}"] if out.maintenance else []
            out.result, out.reason = "PartiallyFailed", "; ".join(why)
        elif run.state in Run.ACTIVE_STATES and (run.phase or "").endswith("@" + s):
            out.result, out.reason = "InProgress", "patched; bringing its VMs home"
        else:
            out.result = "Succeeded"
            if run.params.get("failback") == "none":
                out.reason = "failback none: its VMs stay where the drain put them"
    elif run.state in Run.ACTIVE_STATES:
        out.result = "InProgress"
    else:
        out.result, out.reason = "Canceled", f"the run was {run.get_state_display().lower()} before it was patched"
    return out


def build(run: Run) -> Report:
    """The report of a patch run (``final`` once the run has ended: until then it is what is known so far)."""
    mine, eng = own(run), run.context.get("engine") or {}
    steps = list(run.steps.all().order_by("index"))
    nodes = [_node_result(run, short(n), steps, mine, eng) for n in run.params.get("order") or []]
    for n in run.params.get("skipped_nodes") or []:
        nodes.append(_node_result(run, short(n), steps, mine, eng))
    return Report(run.pk, run.params.get("cluster", ""), run.state, run.state not in Run.ACTIVE_STATES,
                  run.started_at.isoformat() if run.started_at else None,
                  run.finished_at.isoformat() if run.finished_at else None, run.message, nodes)
