"""VMM user roles from Slipway's side: read one, create one, change its members and scope,
grant or revoke the checkpoint permission per cloud, and read back what it allows.

Every call sends structured commands, or a constant script whose values are bound as
parameters (an ``Add-SCUserRolePermission`` needs two objects, the role and the cloud).
Permission changes are VMM jobs: they return the job (``vmm.wait_job`` follows it); the
other changes wait for their job on the server and return the role as it is then.
"""
from __future__ import annotations

import dataclasses

from . import errors
from .commands import check_literal_name, cmd, parse_json_output, script, select_json
from .session import FabricSession
from .types import JobInfo
from .vmm import _job_variable, _read_job, _ref_name, _str

ROLE_FIELDS = ("ID", "Name", "Profile", "Description", "Members", "Cloud", "Permission", "CloudPermission")
PROFILES = ("TenantAdmin", "SelfServiceUser", "DelegatedAdmin", "ReadOnlyAdmin")
# Slipway's checkpoint settings -> VMM's permission (UserActions) names
CHECKPOINT_PERMISSIONS = ("Checkpoint", "CheckpointRestoreOnly")

_PERMISSION_SCRIPT = ("param($RoleID, $CloudName, $JobVariable)\n"
                      "$role = Get-SCUserRole -ID $RoleID\n"
                      "$cloud = Get-SCCloud -Name $CloudName\n"
                      "{verb}-SCUserRolePermission -UserRole $role -Cloud $cloud -{permission} "
                      "-RunAsynchronously -JobVariable $JobVariable | Out-Null")
PERMISSION_SCRIPTS = {(verb, p): _PERMISSION_SCRIPT.format(verb=verb, permission=p)
                      for verb in ("Add", "Remove") for p in CHECKPOINT_PERMISSIONS}
ADD_SCOPE_SCRIPT = ("param($RoleID, $CloudName)\n"
                    "$role = Get-SCUserRole -ID $RoleID\n"
                    "$cloud = Get-SCCloud -Name $CloudName\n"
                    "Set-SCUserRole -UserRole $role -AddScope $cloud")


@dataclasses.dataclass
class UserRoleDetail:
    id: str
    name: str
    profile: str
    description: str
    members: list
    clouds: list             # cloud names in the role's scope
    cloud_permissions: dict  # cloud name -> VMM permission names

    def checkpoint_permission(self, cloud_name: str) -> str:
        """'Checkpoint', 'CheckpointRestoreOnly' or '' for one cloud."""
        perms = self.cloud_permissions.get(cloud_name, [])
        return next((p for p in CHECKPOINT_PERMISSIONS if p in perms), "")


def _list(value) -> list:
    if value in (None, ""):
        return []
    return value if isinstance(value, list) else [value]


def _detail(d: dict) -> UserRoleDetail:
    per_cloud = d.get("CloudPermission") or {}
    if not isinstance(per_cloud, dict):
        per_cloud = {}
    return UserRoleDetail(
        id=_str(d.get("ID")), name=_str(d.get("Name")), profile=_str(d.get("Profile")),
        description=_str(d.get("Description")), members=[str(m) for m in _list(d.get("Members"))],
        clouds=[_ref_name(c) for c in _list(d.get("Cloud"))],
        cloud_permissions={str(k): [str(p) for p in _list(v)] for k, v in per_cloud.items()},
    )


def _rows(s: FabricSession, pipeline, cmdlet: str, target: str) -> list[UserRoleDetail]:
    result = s.run([pipeline + select_json(*ROLE_FIELDS, depth=3)], cmdlet=cmdlet, target=target)
    return [_detail(r) for r in parse_json_output(result.output)]


def _not_found(s: FabricSession, what: str, cmdlet: str, target: str) -> errors.NotFound:
    return errors.NotFound(s.settings.name, f"no user role {what}", cmdlet=cmdlet, target=target, kind=s.settings.kind)


def get_user_role(s: FabricSession, *, name: str | None = None, role_id: str | None = None) -> UserRoleDetail:
    """One role by its exact name or its ID (NotFound otherwise)."""
    if (name is None) == (role_id is None):
        raise ValueError("give a user role name or ID")
    if role_id is not None:
        found = _rows(s, [cmd("Get-SCUserRole", ID=role_id)], "Get-SCUserRole", role_id)
    else:
        # -Name takes wildcards: fetch all and compare names exactly, so '*' is just a character
        found = [r for r in _rows(s, [cmd("Get-SCUserRole")], "Get-SCUserRole", name) if r.name == name]
    if not found:
        raise _not_found(s, f"has the ID {role_id}" if role_id else f"is named {name}", "Get-SCUserRole",
                         role_id or name)
    return found[0]


def create_user_role(s: FabricSession, name: str, profile: str = "TenantAdmin", description: str = "") -> UserRoleDetail:
    if profile not in PROFILES:
        raise ValueError(f"unknown user role profile {profile!r}; expected one of {', '.join(PROFILES)}")
    found = _rows(s, [cmd("New-SCUserRole", Name=name, UserRoleProfile=profile, Description=description or "")],
                  "New-SCUserRole", name)
    return found[0]


def _set(s: FabricSession, role_id: str, label: str, **params) -> UserRoleDetail:
    found = _rows(s, [cmd("Get-SCUserRole", ID=role_id), cmd("Set-SCUserRole", **params)], "Set-SCUserRole",
                  label or role_id)
    if not found:
        raise _not_found(s, f"has the ID {role_id}; nothing was changed", "Set-SCUserRole", label or role_id)
    return found[0]


def add_member(s: FabricSession, role_id: str, member: str, label: str = "") -> UserRoleDetail:
    return _set(s, role_id, label, AddMember=[member])


def remove_member(s: FabricSession, role_id: str, member: str, label: str = "") -> UserRoleDetail:
    return _set(s, role_id, label, RemoveMember=[member])


def add_scope(s: FabricSession, role_id: str, cloud_name: str, label: str = "") -> UserRoleDetail:
    check_literal_name(s, cloud_name, "cloud", "Set-SCUserRole")
    _require_cloud(s, cloud_name, "Set-SCUserRole", label or role_id)
    found = _rows(s, [script(ADD_SCOPE_SCRIPT, RoleID=role_id, CloudName=cloud_name)], "Set-SCUserRole",
                  label or role_id)
    if not found:
        raise _not_found(s, f"has the ID {role_id}; nothing was changed", "Set-SCUserRole", label or role_id)
    return found[0]


def remove_user_role(s: FabricSession, role_id: str, label: str = "") -> None:
    result = s.run([[cmd("Get-SCUserRole", ID=role_id), *select_json("ID")]], cmdlet="Remove-SCUserRole",
                   target=label or role_id)
    if not parse_json_output(result.output):
        raise _not_found(s, f"has the ID {role_id}; nothing was removed", "Remove-SCUserRole", label or role_id)
    s.run([[cmd("Get-SCUserRole", ID=role_id), cmd("Remove-SCUserRole", Force=True)]], cmdlet="Remove-SCUserRole",
          target=label or role_id)


def _require_cloud(s: FabricSession, cloud_name: str, cmdlet: str, target: str) -> None:
    result = s.run([[cmd("Get-SCCloud", Name=cloud_name), *select_json("ID")]], cmdlet=cmdlet, target=target)
    if not parse_json_output(result.output):
        raise errors.NotFound(s.settings.name, f"no cloud is named {cloud_name}; nothing was changed", cmdlet=cmdlet,
                              target=target, kind=s.settings.kind)


def _permission(s: FabricSession, verb: str, role_id: str, cloud_name: str, permission: str, label: str) -> JobInfo:
    if permission not in CHECKPOINT_PERMISSIONS:
        raise ValueError(f"unknown checkpoint permission {permission!r}; expected one of "
                         f"{', '.join(CHECKPOINT_PERMISSIONS)}")
    cmdlet = f"{verb}-SCUserRolePermission"
    check_literal_name(s, cloud_name, "cloud", cmdlet)
    _require_cloud(s, cloud_name, cmdlet, label or role_id)
    variable = _job_variable()
    try:
        return _read_job(s, [[script(PERMISSION_SCRIPTS[(verb, permission)], RoleID=role_id, CloudName=cloud_name,
                                     JobVariable=variable)]], variable, cmdlet=cmdlet, target=label or role_id)
    except errors.FabricCommandError as exc:
        if exc.error_id.startswith("ParameterArgumentValidationErrorNullNotAllowed"):   # $role came back empty
            raise _not_found(s, f"has the ID {role_id}; nothing was changed", cmdlet, label or role_id) from exc
        raise


def add_checkpoint_permission(s: FabricSession, role_id: str, cloud_name: str, permission: str = "Checkpoint",
                              label: str = "") -> JobInfo:
    """Grant ``Checkpoint`` (create, view and restore) or ``CheckpointRestoreOnly`` in one cloud."""
    return _permission(s, "Add", role_id, cloud_name, permission, label)


def remove_checkpoint_permission(s: FabricSession, role_id: str, cloud_name: str, permission: str = "Checkpoint",
                                 label: str = "") -> JobInfo:
    return _permission(s, "Remove", role_id, cloud_name, permission, label)
