"""VMM user role cmdlets: Get-/New-/Set-/Remove-SCUserRole and Add-/Remove-SCUserRolePermission.

Parameters follow VMM's: ``New-SCUserRole -Name -UserRoleProfile [-Description]``;
``Set-SCUserRole -UserRole [-Name] [-Description] [-AddMember] [-RemoveMember] [-AddScope]
[-RemoveScope] [-Permission]`` (``-Permission`` takes VMM's UserActions names, e.g.
Checkpoint, CheckpointRestoreOnly, Start, Stop, Shutdown, Save, PauseAndResume, and replaces
the role's permissions in every cloud of its scope); ``Add-/Remove-SCUserRolePermission
-UserRole [-Cloud]`` with one switch per UserActions name (-Checkpoint, -CheckpointRestoreOnly,
-Start, -Stop, -Shutdown, -Save, -PauseAndResume, -RemoteConnect) changes them per cloud.
What a role allows reads back from ``Get-SCUserRole``: ``Permission`` (every cloud) and
``CloudPermission`` (cloud name -> names), ``Members``, ``Cloud``.
A call made on behalf of a tenant (-OnBehalfOfUser) may read roles but not change them.
"""
from __future__ import annotations

from .. import roles
from ..access import PERMISSIONS
from ..errors import VmmFailure
from . import objects as O
from .base import P, cmdlet
from .vmm import JOBC, _match, _run


@cmdlet("Get-SCUserRole", [P("Name", position=0), P("ID", "guid"),
                           P("UserRoleProfile", choices=roles.PROFILES)], vmm=True)
def get_role(ctx, a):
    with ctx.f.lock:
        ctx.f.advance()
        found = sorted(ctx.f.roles.values(), key=lambda r: r.name.lower())
        if a.get("ID"):
            found = [r for r in found if r.id == a["ID"]]
        if a.get("Name"):
            found = [r for r in found if _match(r.name, a["Name"])]
        if a.get("UserRoleProfile"):
            found = [r for r in found if r.profile == a["UserRoleProfile"]]
        if ctx.acting is not None:
            found = [r for r in found if r.id == ctx.acting.role.id]
        return [O.role_obj(ctx.f, r) for r in found]


@cmdlet("New-SCUserRole", [P("Name", mandatory=True, position=0),
                           P("UserRoleProfile", mandatory=True, choices=roles.PROFILES),
                           P("Description"), P("ParentUserRole", "role")], **JOBC)
def new_role(ctx, a):
    ctx.admin_only()
    with ctx.f.lock:
        try:
            role = roles.new_role(ctx.f, a["Name"], a["UserRoleProfile"], a.get("Description") or "")
        except VmmFailure as failure:
            raise failure.to_pserror(ctx.name, a["Name"])
        return [O.role_obj(ctx.f, role)]


@cmdlet("Set-SCUserRole", [P("UserRole", "role", mandatory=True, pipeline=True, position=0), P("Name"),
                           P("Description"), P("AddMember", "strings", many=True),
                           P("RemoveMember", "strings", many=True), P("AddScope", "cloud", many=True),
                           P("RemoveScope", "cloud", many=True),
                           P("Permission", "strings", many=True, choices=PERMISSIONS)], **JOBC)
def set_role(ctx, a):
    ctx.admin_only()
    role = a["UserRole"]
    job = _run(ctx, roles.set_role, role, ctx.user, ctx.name, name=a.get("Name"), description=a.get("Description"),
               add_members=a.get("AddMember") or [], remove_members=a.get("RemoveMember") or [],
               add_clouds=a.get("AddScope") or [], remove_clouds=a.get("RemoveScope") or [],
               permission=a.get("Permission"))
    return ctx.job_result(job, lambda: O.role_obj(ctx.f, role))


@cmdlet("Remove-SCUserRole", [P("UserRole", "role", mandatory=True, pipeline=True, position=0),
                              P("Force", "switch")], **JOBC)
def remove_role(ctx, a):
    ctx.admin_only()
    _run(ctx, roles.remove_role, a["UserRole"])
    return []


_PERM_PARAMS = [P("UserRole", "role", mandatory=True, pipeline=True, position=0), P("Cloud", "cloud", many=True),
                *(P(name, "switch") for name in PERMISSIONS)]


def _role_perm(ctx, a, add):
    ctx.admin_only()
    perms = [p for p in PERMISSIONS if a.get(p)]
    if not perms:
        raise VmmFailure(roles.E.E_ROLE, "Specify at least one permission (" + ", ".join("-" + p for p in PERMISSIONS)
                         + ").", category="InvalidArgument").to_pserror(ctx.name)
    role = a["UserRole"]
    job = _run(ctx, roles.role_permission, role, ctx.user, a.get("Cloud") or [], perms, add, ctx.name)
    return ctx.job_result(job, lambda: O.role_obj(ctx.f, role))


@cmdlet("Add-SCUserRolePermission", _PERM_PARAMS, **JOBC)
def add_role_permission(ctx, a):
    return _role_perm(ctx, a, True)


@cmdlet("Remove-SCUserRolePermission", _PERM_PARAMS, **JOBC)
def remove_role_permission(ctx, a):
    return _role_perm(ctx, a, False)
