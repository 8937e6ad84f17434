"""SCOM cmdlets: monitoring objects (one Windows computer per VM and per host, DisplayName
= the computer's FQDN) and maintenance mode. Maintenance windows run on the wall clock
(the time scale does not apply). A window is active until its ScheduledEndTime or until
Set-SCOMMaintenanceMode sets an EndTime at or before now. SCOM's 5-minute minimum is not
enforced.
"""
from __future__ import annotations

import fnmatch
import uuid

from ..contract import PSError
from ..fabric import MaintEntry
from ..jobs import utcnow
from . import objects as O
from .base import P, cmdlet


def _scom_error(message, error_id, category="InvalidOperation"):
    return PSError(message, error_id=error_id, category=category,
                   exception_type="System.InvalidOperationException")


def _name_match(display: str, pattern: str) -> bool:
    d, p = display.lower(), pattern.lower()
    if "*" in p or "?" in p:
        return fnmatch.fnmatchcase(d, p)
    return d == p or ("." not in p and d.split(".")[0] == p)


@cmdlet("Get-SCOMClassInstance", [P("Name", "strings", position=0, many=True), P("DisplayName", "strings", many=True),
                                  P("Id", "guid"), P("Class", "any"), P("ComputerName", "strings", many=True)])
def get_instance(ctx, a):
    names = (a.get("Name") or []) + (a.get("DisplayName") or [])
    ctx.fault_now(names or [""])
    f = ctx.f
    with f.lock:
        inst = sorted(f.scom.values(), key=lambda s: s.display_name.lower())
        if a.get("Id"):
            inst = [s for s in inst if s.id == a["Id"]]
        if names:
            inst = [s for s in inst if any(_name_match(s.display_name, n) for n in names)]
        return [O.monobj(f, s) for s in inst]


@cmdlet("Start-SCOMMaintenanceMode", [P("Instance", "monobj", mandatory=True, pipeline=True, many=True, position=0),
                                      P("EndTime", "datetime", mandatory=True, position=1),
                                      P("Reason", choices=tuple(O.MM_REASONS)), P("Comment"), P("PassThru", "switch")])
def start_mm(ctx, a):
    f = ctx.f
    out = []
    for inst in a["Instance"]:
        ctx.fault_now([inst.display_name])
        with f.lock:
            now = utcnow()
            if a["EndTime"] <= now:
                raise _scom_error("The end time of the maintenance window must be later than the current time.",
                                  "InvalidEndTime", "InvalidArgument")
            if f.active_maint(inst.id) is not None:
                ctx.error(_scom_error(f"The monitoring object {inst.display_name} is already in maintenance mode.",
                                      "AlreadyInMaintenanceMode"))
                continue
            m = MaintEntry(uuid.uuid4(), inst.id, now, a["EndTime"], a.get("Reason") or "PlannedOther",
                           a.get("Comment") or "", ctx.user)
            f.maint[m.id] = m
            if a.get("PassThru"):
                out.append(O.maint_obj(f, m))
    return out


@cmdlet("Get-SCOMMaintenanceMode", [P("Instance", "monobj", pipeline=True, many=True, position=0),
                                    P("History", "switch")])
def get_mm(ctx, a):
    f = ctx.f
    with f.lock:
        now = utcnow()
        entries = sorted(f.maint.values(), key=lambda m: m.start)
        if a.get("Instance") is not None:
            ids = {i.id for i in a["Instance"]}
            entries = [m for m in entries if m.instance_id in ids]
        if not a.get("History"):
            entries = [m for m in entries if m.active(now)]
        return [O.maint_obj(f, m) for m in entries]


@cmdlet("Set-SCOMMaintenanceMode", [P("MaintenanceModeEntry", "maint", mandatory=True, pipeline=True, position=0),
                                    P("EndTime", "datetime", mandatory=True), P("Reason", choices=tuple(O.MM_REASONS)),
                                    P("Comment"), P("PassThru", "switch")])
def set_mm(ctx, a):
    f = ctx.f
    m = a["MaintenanceModeEntry"]
    inst = f.scom.get(m.instance_id)
    ctx.fault_now([inst.display_name if inst else ""])
    with f.lock:
        now = utcnow()
        if not m.active(now):
            raise _scom_error("The maintenance window has already ended.", "MaintenanceModeEnded")
        if a["EndTime"] <= now:
            m.end = now
        m.scheduled_end = min(a["EndTime"], m.scheduled_end) if a["EndTime"] <= now else a["EndTime"]
        if a.get("Reason"):
            m.reason = a["Reason"]
        if a.get("Comment") is not None:
            m.comment = a["Comment"]
        m.modified = now
        return [O.maint_obj(f, m)] if a.get("PassThru") else []
