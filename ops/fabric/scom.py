"""Typed SCOM calls: maintenance mode for the monitored objects of VMs and hosts."""
from __future__ import annotations

import datetime as dt

from . import errors
from .commands import check_literal_name, cmd, parse_date, parse_json_output, script, select_json
from .session import FabricSession
from .types import MaintenanceInfo

MM_FIELDS = ("StartTime", "ScheduledEndTime", "Reason", "Comments", "User")
REASONS = (
    "PlannedOther", "UnplannedOther", "PlannedHardwareMaintenance", "UnplannedHardwareMaintenance",
    "PlannedHardwareInstallation", "UnplannedHardwareInstallation", "PlannedOperatingSystemReconfiguration",
    "UnplannedOperatingSystemReconfiguration", "PlannedApplicationMaintenance", "UnplannedApplicationMaintenance",
    "ApplicationInstallation", "ApplicationUnresponsive", "ApplicationUnstable", "SecurityIssue", "LossOfNetworkConnectivity",
)

START_SCRIPT = (
    "param($Name, $EndTime, $Reason, $Comment)\n"
    "$instance = Get-SCOMClassInstance -Name $Name\n"
    "Start-SCOMMaintenanceMode -Instance $instance -EndTime $EndTime -Reason $Reason -Comment $Comment"
)


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc).isoformat()


def _instance_pipe(name: str):
    return [cmd("Get-SCOMClassInstance", Name=name)]


def check(s: FabricSession) -> None:
    """Connect, authenticate and read once (a run's start check): raises the server's own error."""
    s.run([[cmd("Get-SCOMMaintenanceMode"), cmd("Out-Null")]], cmdlet="Get-SCOMMaintenanceMode")


def get_maintenance(s: FabricSession, instance_name: str) -> MaintenanceInfo | None:
    check_literal_name(s, instance_name, "monitored computer", "Get-SCOMMaintenanceMode")
    rows = parse_json_output(
        s.run([_instance_pipe(instance_name) + [cmd("Get-SCOMMaintenanceMode"), *select_json(*MM_FIELDS)]],
              cmdlet="Get-SCOMMaintenanceMode", target=instance_name).output
    )
    if not rows:
        return None
    r = rows[0]
    end = parse_date(r.get("ScheduledEndTime"))
    if end is not None and end <= dt.datetime.now(dt.timezone.utc):
        return None
    return MaintenanceInfo(instance_name, parse_date(r.get("StartTime")), end, str(r.get("Reason") or ""),
                           str(r.get("Comments") or ""), str(r.get("User") or ""))


def start_maintenance(s: FabricSession, instance_name: str, end_time: dt.datetime, reason: str, comment: str) -> None:
    check_literal_name(s, instance_name, "monitored computer", "Start-SCOMMaintenanceMode")
    if reason not in REASONS:
        raise ValueError(f"unknown maintenance reason {reason!r}")
    found = s.run([_instance_pipe(instance_name) + select_json("DisplayName")], cmdlet="Get-SCOMClassInstance",
                  target=instance_name)
    if not parse_json_output(found.output):
        raise errors.NotFound(s.settings.name, f"no monitored object is named {instance_name}",
                              cmdlet="Start-SCOMMaintenanceMode", target=instance_name, kind=s.settings.kind)
    # pypsrp 0.9 cannot serialize a datetime; PowerShell converts an ISO 8601 string to DateTime on binding
    s.run([[script(START_SCRIPT, Name=instance_name, EndTime=_iso(end_time), Reason=reason, Comment=comment)]],
          cmdlet="Start-SCOMMaintenanceMode", target=instance_name)


def stop_maintenance(s: FabricSession, instance_name: str) -> bool:
    """End maintenance mode now; False when the object was not in maintenance."""
    if get_maintenance(s, instance_name) is None:
        return False
    now = dt.datetime.now(dt.timezone.utc)
    s.run([_instance_pipe(instance_name) + [cmd("Get-SCOMMaintenanceMode"), cmd("Set-SCOMMaintenanceMode", EndTime=_iso(now)),
                                            cmd("Out-Null")]],
          cmdlet="Set-SCOMMaintenanceMode", target=instance_name)
    return True


# -- many objects in one round trip ------------------------------------------------------
def maintenance_states(s: FabricSession, names: list[str]) -> dict[str, bool | None]:
    """name -> in maintenance mode (True/False), or None when SCOM monitors no object of that name."""
    if not names:
        return {}
    for name in names:
        check_literal_name(s, name, "monitored computer", "Get-SCOMClassInstance")
    rows = parse_json_output(s.run([[cmd("Get-SCOMClassInstance", Name=list(names)),
                                     *select_json("DisplayName", "InMaintenanceMode")]],
                                   cmdlet="Get-SCOMClassInstance", target=f"{len(names)} objects").output)
    by_name = {}
    for r in rows:
        display = str(r.get("DisplayName") or "")
        by_name[display.lower()] = bool(r.get("InMaintenanceMode"))
        by_name.setdefault(display.split(".")[0].lower(), bool(r.get("InMaintenanceMode")))
    return {n: by_name.get(n.lower(), by_name.get(n.split(".")[0].lower())) for n in names}


def start_maintenance_many(s: FabricSession, names: list[str], end_time: dt.datetime, reason: str, comment: str) -> None:
    """``Get-SCOMClassInstance -Name a,b,c | Start-SCOMMaintenanceMode``: one round trip for all of them."""
    if reason not in REASONS:
        raise ValueError(f"unknown maintenance reason {reason!r}")
    for name in names:
        check_literal_name(s, name, "monitored computer", "Start-SCOMMaintenanceMode")
    if names:
        s.run([[cmd("Get-SCOMClassInstance", Name=list(names)),
                cmd("Start-SCOMMaintenanceMode", EndTime=_iso(end_time), Reason=reason, Comment=comment), cmd("Out-Null")]],
              cmdlet="Start-SCOMMaintenanceMode", target=_label(names))


def stop_maintenance_many(s: FabricSession, names: list[str]) -> None:
    for name in names:
        check_literal_name(s, name, "monitored computer", "Set-SCOMMaintenanceMode")
    if names:
        now = dt.datetime.now(dt.timezone.utc)
        s.run([[cmd("Get-SCOMClassInstance", Name=list(names)), cmd("Get-SCOMMaintenanceMode"),
                cmd("Set-SCOMMaintenanceMode", EndTime=_iso(now)), cmd("Out-Null")]],
              cmdlet="Set-SCOMMaintenanceMode", target=_label(names))


def _label(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{len(names)} objects ({', '.join(names[:3])}{', …' if len(names) > 3 else ''})"
