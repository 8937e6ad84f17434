"""The ConfigMgr site drive: ``Import-Module ConfigurationManager`` creates a PSDrive of the CMSite
provider named after the site code (``CM1:``), and every ConfigMgr cmdlet runs only with the
current location on that drive, as on a real site server. Each session (runspace pool) has its
own modules and location; a new session starts on ``C:\\`` without the module.

Cmdlets: Import-Module (-Name; ConfigurationManager, or a path ending in ConfigurationManager.psd1),
Get-PSDrive (-Name, -PSProvider), Set-Location (-Path), Get-Location.
"""
from __future__ import annotations

from ..contract import PSError, SimObject
from .base import P, cmdlet

MODULE = "ConfigurationManager"
T_DRIVE = "System.Management.Automation.PSDriveInfo"


def _state(session) -> dict:
    st = getattr(session, "cm_site_state", None)
    if st is None:
        st = session.cm_site_state = {"modules": set(), "location": "C:\\"}
    return st


def _drives(ctx) -> list[tuple[str, str, str]]:
    """(name, provider, root) of the drives this session sees."""
    drives = [("C", "Microsoft.PowerShell.Core\\FileSystem", "C:\\")]
    if MODULE.lower() in _state(ctx.session)["modules"]:
        w = ctx.f.patching
        drives.append((w.site_code, "AdminUI.PS.Provider\\CMSite", w.site_server or ctx.f.vmm_server))
    return drives


def require_site_drive(ctx) -> None:
    """ConfigMgr cmdlets refuse to run unless the location is the site drive."""
    location = _state(ctx.session)["location"]
    site = ctx.f.patching.site_code
    if not site or not location.upper().startswith(site.upper() + ":") or \
            MODULE.lower() not in _state(ctx.session)["modules"]:
        raise PSError("This command cannot be run from the current drive. To run this command you must first connect "
                      "to a Configuration Manager drive.", error_id=f"InvalidOperation,{ctx.name}",
                      category="InvalidOperation", exception_type="System.InvalidOperationException")


@cmdlet("Import-Module", [P("Name", "strings", position=0, many=True, mandatory=True), P("Global", "switch"),
                          P("Force", "switch"), P("PassThru", "switch")])
def import_module(ctx, a):
    for name in a["Name"]:
        base = name.replace("/", "\\").rsplit("\\", 1)[-1]
        base = base[:-5] if base.lower().endswith(".psd1") else base
        if base.lower() != MODULE.lower() or not ctx.f.patching.site_code or not ctx.f.patching.devices:
            raise PSError(f"The specified module '{name}' was not loaded because no valid module file was found in "
                          "any module directory.", error_id="Modules_ModuleNotFound,Microsoft.PowerShell.Commands."
                          "ImportModuleCommand", category="ResourceUnavailable",
                          exception_type="System.IO.FileNotFoundException")
        _state(ctx.session)["modules"].add(MODULE.lower())
    return []


@cmdlet("Get-PSDrive", [P("Name", "strings", position=0, many=True), P("PSProvider", "strings", many=True)])
def get_psdrive(ctx, a):
    out = []
    for name, provider, root in _drives(ctx):
        if a.get("Name") and name.lower() not in [n.lower() for n in a["Name"]]:
            continue
        if a.get("PSProvider") and not any(provider.lower().endswith(p.lower()) for p in a["PSProvider"]):
            continue
        out.append(SimObject([T_DRIVE, "System.Object"], {"Name": name, "Provider": provider, "Root": root,
                                                          "Description": "" if name == "C" else "Configuration Manager site"},
                             name))
    return out


@cmdlet("Set-Location", [P("Path", position=0, mandatory=True), P("PassThru", "switch")])
def set_location(ctx, a):
    path = a["Path"]
    drive = path.split(":", 1)[0] if ":" in path else ""
    if not any(drive.lower() == name.lower() for name, _, _ in _drives(ctx)):
        raise PSError(f"Cannot find drive. A drive with the name '{drive or path}' does not exist.",
                      error_id="DriveNotFound,Microsoft.PowerShell.Commands.SetLocationCommand", category="ObjectNotFound",
                      exception_type="System.Management.Automation.DriveNotFoundException")
    _state(ctx.session)["location"] = drive.upper() + ":\\" + path.split(":", 1)[1].lstrip("\\")
    return []


@cmdlet("Get-Location", [])
def get_location(ctx, a):
    return [_state(ctx.session)["location"]]
