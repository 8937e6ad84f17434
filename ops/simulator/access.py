"""Acting on behalf of a tenant: ``-OnBehalfOfUser`` / ``-OnBehalfOfUserRole``.

A call made on behalf of a user in a user role sees and changes only what that role may:
the user must be a member of the role, a VM must be in the role's scope (its ``UserRole``
is the role and its cloud is one of the role's clouds), and an action needs one of the
role's permissions in the VM's cloud. The permission names are VMM's ``UserActions``
values as ``Set-SCUserRole -Permission`` takes them; ``Add-SCUserRolePermission`` uses
the same names as switches (ops/simulator/cmdlets/userroles.py).

Refusals are VMM errors with category ``PermissionDenied`` (``errors.E_ACCESS``).
"""
from __future__ import annotations

import dataclasses

from . import errors as E

# VMM UserActions names (Set-SCUserRole -Permission) the simulator enforces
PERMISSIONS = ("Checkpoint", "CheckpointRestoreOnly", "Start", "Stop", "Shutdown", "Save", "PauseAndResume",
               "RemoteConnect")
CHECKPOINT = ("Checkpoint",)
RESTORE = ("Checkpoint", "CheckpointRestoreOnly")
STOP_MODES = {"off": ("Stop",), "shutdown": ("Shutdown",), "save": ("Save",)}


@dataclasses.dataclass(frozen=True)
class Acting:
    user: str
    role: object   # fabric.UserRole


def denied(message: str, cmdlet: str, target=None):
    return E.vmm_error(E.E_ACCESS, message, cmdlet, target, category="PermissionDenied")


def acting_for(f, bound: dict, cmdlet: str) -> Acting | None:
    """The tenant a call acts for, or None; refuses a half-given pair or a user outside the role."""
    user = bound.get("OnBehalfOfUser")
    role = bound.get("OnBehalfOfUserRole")
    if user is None and role is None:
        return None
    if not user or role is None:
        raise denied("-OnBehalfOfUser and -OnBehalfOfUserRole must be given together.", cmdlet)
    with f.lock:
        live = f.roles.get(role.id)
        members = [m.lower() for m in live.members] if live else []
    if live is None:
        raise E.vmm_error(E.E_NOT_FOUND, "Unable to find the specified user role. The object may have been deleted.",
                          cmdlet, category="ObjectNotFound")
    if str(user).lower() not in members:
        raise denied(f"You cannot perform this action because {user} is not a member of the user role "
                     f"{live.name}.", cmdlet, user)
    return Acting(str(user), live)


def in_scope(acting: Acting, vm) -> bool:
    return vm.user_role_id == acting.role.id and vm.cloud_id in acting.role.cloud_ids


def permissions_in(role, cloud_id) -> list:
    return list(role.permissions.get(str(cloud_id), [])) if cloud_id in role.cloud_ids else []


def require(f, acting: Acting | None, vm, allowed: tuple, cmdlet: str) -> None:
    """Refuse unless the tenant may act on ``vm`` with one of ``allowed`` (empty: scope only)."""
    if acting is None:
        return
    role = acting.role
    if not in_scope(acting, vm):
        raise denied(f"You cannot perform this action because the virtual machine {vm.name} is not within the "
                     f"scope of the user role {role.name}.", cmdlet, vm.name)
    if allowed and not set(allowed) & set(permissions_in(role, vm.cloud_id)):
        cloud = f.clouds.get(vm.cloud_id)
        raise denied(f"You do not have permission to perform this action: the user role {role.name} lacks the "
                     f"{' or '.join(allowed)} permission in the cloud {cloud.name if cloud else vm.cloud_id}.",
                     cmdlet, vm.name)


def admin_only(acting: Acting | None, cmdlet: str) -> None:
    if acting is not None:
        raise denied(f"You cannot perform this action because the user role {acting.role.name} "
                     f"({acting.role.profile}) does not allow {cmdlet}.", cmdlet)
