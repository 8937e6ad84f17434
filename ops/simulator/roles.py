"""VMM user roles: what New-/Set-/Remove-SCUserRole and Add-/Remove-SCUserRolePermission do
(the cmdlets are ops/simulator/cmdlets/userroles.py; who may act for a role is access.py).

A role's scope is its clouds; its permissions are kept per cloud (``str(cloud id) -> [name]``).
Changing a role is a job ("Update user role") that locks the role; creating and removing
one is immediate.
"""
from __future__ import annotations

import uuid

from . import errors as E
from .access import PERMISSIONS
from .errors import VmmFailure
from .fabric import UserRole
from .jobs import Step
from .operations import _submit, ensure_free

PROFILES = ("Administrator", "DelegatedAdmin", "ReadOnlyAdmin", "TenantAdmin", "SelfServiceUser")


def _bad(message: str) -> VmmFailure:
    return VmmFailure(E.E_ROLE, message, category="InvalidArgument")


def check_member(name: str) -> str:
    """A user or group as VMM takes it (DOMAIN\\user or user@domain); control characters never are."""
    text = str(name).strip()
    if not text or any(ord(ch) < 32 for ch in text) or not ("\\" in text or "@" in text):
        raise _bad(f"Unable to find the user or group {name!r}. Specify it as DOMAIN\\name or name@domain.")
    return text


def new_role(f, name: str, profile: str, description: str = "") -> UserRole:
    if not name.strip():
        raise _bad("Specify a name for the user role.")
    if f.find_by_name("roles", name) is not None:
        raise _bad(f"A user role named {name} already exists. Specify a different name.")
    return f.add("roles", UserRole(uuid.uuid4(), name, profile, description=description or ""))


def remove_role(f, role) -> None:
    ensure_free(f, role, "user role", role.name)
    for vm in f.vms.values():
        if vm.user_role_id == role.id:
            vm.user_role_id = None
    f.roles.pop(role.id, None)
    f.refs.pop(("role", role.id), None)


def set_role(f, role, owner, cmdlet, *, name=None, description=None, add_members=(), remove_members=(),
             add_clouds=(), remove_clouds=(), permission=None):
    """``permission``: None leaves them, a list replaces them in every cloud of the scope."""
    ensure_free(f, role, "user role", role.name)
    add_members = [check_member(m) for m in add_members]
    if name is not None:
        other = f.find_by_name("roles", name)
        if not name.strip() or (other is not None and other.id != role.id):
            raise _bad(f"A user role named {name} already exists. Specify a different name." if name.strip()
                       else "Specify a name for the user role.")
    missing = [m for m in remove_members if m.lower() not in (x.lower() for x in role.members)]
    if missing:
        raise _bad(f"{', '.join(missing)} is not a member of the user role {role.name}.")

    def done():
        if name is not None:
            role.name = name
            f.refs.pop(("role", role.id), None)
        if description is not None:
            role.description = description
        for m in add_members:
            if m.lower() not in (x.lower() for x in role.members):
                role.members.append(m)
        drop = {m.lower() for m in remove_members}
        role.members[:] = [m for m in role.members if m.lower() not in drop]
        for c in add_clouds:
            if c.id not in role.cloud_ids:
                role.cloud_ids.append(c.id)
        for c in remove_clouds:
            if c.id in role.cloud_ids:
                role.cloud_ids.remove(c.id)
            role.permissions.pop(str(c.id), None)
        if permission is not None:
            for cid in role.cloud_ids:
                role.permissions[str(cid)] = [p for p in PERMISSIONS if p in permission]
    return _update_job(f, role, owner, cmdlet, done)


def role_permission(f, role, owner, clouds, perms, add=True, cmdlet=""):
    """Add (or remove) permissions in the given clouds (default: every cloud of the scope);
    adding in a cloud outside the scope adds that cloud to the scope."""
    ensure_free(f, role, "user role", role.name)
    cloud_ids = [c.id for c in clouds] if clouds else list(role.cloud_ids)

    def done():
        for cid in cloud_ids:
            if add and cid not in role.cloud_ids:
                role.cloud_ids.append(cid)
            current = role.permissions.setdefault(str(cid), [])
            for p in perms:
                if add and p not in current:
                    current.append(p)
                elif not add and p in current:
                    current.remove(p)
    return _update_job(f, role, owner, cmdlet, done)


def _update_job(f, role, owner, cmdlet, done):
    steps = [Step(f.duration("user_role"), done, None, "Update user role")]
    job = _submit(f, "Update user role", cmdlet, owner, steps, [role.id], [role.name], (role.name, role.id, "UserRole"))
    role.most_recent_job = job.id
    return job
