"""What ConfigMgr knows per update: ``Get-CMSoftwareUpdate`` (SMS_SoftwareUpdate: the catalogue, with
-UpdateGroupName) and, per device and update, the SMS Provider's SMS_UpdateComplianceStatus class read
with ``Get-CimInstance -Namespace root\\SMS\\site_<code> -ClassName SMS_UpdateComplianceStatus
-Filter "ResourceID = N"``.

SMS_UpdateComplianceStatus.Status: 0 unknown, 1 not required, 2 required, 3 installed. An update
installed but waiting for the restart is still 2 with LastEnforcementMessageID 9 (pending system
restart); one that failed has LastEnforcementMessageID 11 and LastErrorCode; one installed by a
deployment has 10. The -Filter takes only ``Property = integer`` terms joined by AND.
"""
from __future__ import annotations

import re

from ..contract import PSError
from ..jobs import utcnow
from .base import P, cmdlet
from .cmsite import require_site_drive
from .configmgr import _like, _obj, _site

_TERM = re.compile(r"^\s*([A-Za-z_]\w*)\s*=\s*(-?\d+)\s*$")


def _update_obj(w, u):
    missing = sum(1 for hp in w.hosts.values() if u.id in hp.pending or u.id in hp.awaiting_restart)
    props = {"CI_ID": u.ci_id, "ArticleID": u.id[2:] if u.id.upper().startswith("KB") else u.id,
             "LocalizedDisplayName": u.title, "BulletinID": "", "IsDeployed": any(
                 u.id in g.updates for g in w.groups.values()), "IsExpired": False, "IsSuperseded": False,
             "MaxExecutionTime": int(u.install_s * 3), "NumMissing": missing, "NumTotal": len(w.devices)}
    return _obj("SMS_SoftwareUpdate", props, u.title, ("update", u.ci_id))


@cmdlet("Get-CMSoftwareUpdate", [P("Name", position=0), P("Id", "int", aliases=("CI_ID",)), P("ArticleId"),
                                 P("UpdateGroupName"), P("Fast", "switch")])
def get_updates(ctx, a):
    require_site_drive(ctx)
    with ctx.f.lock:
        w = _site(ctx)
        updates = sorted(w.updates.values(), key=lambda u: u.ci_id)
        if a.get("UpdateGroupName"):
            groups = [g for g in w.groups.values() if _like(g.name, a["UpdateGroupName"])]
            wanted = {kb for g in groups for kb in g.updates}
            updates = [u for u in updates if u.id in wanted]
        if a.get("Name"):
            updates = [u for u in updates if _like(u.title, a["Name"])]
        if a.get("Id") is not None:
            updates = [u for u in updates if u.ci_id == a["Id"]]
        if a.get("ArticleId"):
            art = a["ArticleId"].upper().removeprefix("KB")
            updates = [u for u in updates if u.id.upper().removeprefix("KB") == art]
        return [_update_obj(w, u) for u in updates]


def _cim_error(message: str, hresult: str) -> PSError:
    return PSError(message, error_id=f"HRESULT {hresult},Microsoft.Management.Infrastructure.CimCmdlets."
                   "GetCimInstanceCommand", category="InvalidArgument",
                   exception_type="Microsoft.Management.Infrastructure.CimException")


def _filter(text: str | None) -> dict:
    if not text:
        return {}
    terms = {}
    for part in re.split(r"\s+AND\s+", text.strip(), flags=re.IGNORECASE):
        m = _TERM.match(part)
        if m is None:
            raise _cim_error("Invalid query ", "0x80041017")
        terms[m.group(1).lower()] = int(m.group(2))
    return terms


def compliance_rows(w, dev):
    hp = w.hosts.get(dev.host.lower())
    results = {}
    for run in w.runs.values():
        if run.resource_id == dev.resource_id:
            results.update(run.results)
    now = utcnow()
    rows = []
    for u in sorted(w.updates.values(), key=lambda u: u.ci_id):
        code = results.get(u.id)
        if hp is not None and u.id in hp.awaiting_restart:
            status, msg = 2, 9
        elif hp is not None and u.id in hp.pending:
            status, msg = 2, (11 if code else 0)
        else:
            status, msg = (3, 10) if code == 0 else (1, 0)
        rows.append({"ResourceID": dev.resource_id, "CI_ID": u.ci_id, "Status": status,
                     "LastEnforcementMessageID": msg, "LastErrorCode": code or 0, "LastStatusCheckTime": now})
    return rows


@cmdlet("Get-CimInstance", [P("ClassName", position=0, mandatory=True), P("Namespace"), P("Filter"),
                            P("ComputerName"), P("KeyOnly", "switch")])
def get_cim_instance(ctx, a):
    f = ctx.f
    with f.lock:
        f.advance()
        w = f.patching
        ns = (a.get("Namespace") or "root\\cimv2").replace("/", "\\").lower()
        if not w.devices or ns != f"root\\sms\\site_{w.site_code}".lower():
            raise _cim_error("Invalid namespace ", "0x8004100e")
        if a["ClassName"].lower() != "sms_updatecompliancestatus":
            raise _cim_error("Invalid class ", "0x80041010")
        terms = _filter(a.get("Filter"))
        rows = [r for dev in sorted(w.devices.values(), key=lambda d: d.resource_id) for r in compliance_rows(w, dev)]
        known = {"resourceid", "ci_id", "status", "lastenforcementmessageid", "lasterrorcode"}
        if set(terms) - known:
            raise _cim_error("Invalid query ", "0x80041017")
        rows = [r for r in rows if all({k.lower(): v for k, v in r.items()}[k] == v for k, v in terms.items())]
        return [_obj("SMS_UpdateComplianceStatus", r, f"SMS_UpdateComplianceStatus.CI_ID={r['CI_ID']}") for r in rows]
