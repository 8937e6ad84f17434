"""Acting on behalf of a tenant: ``-OnBehalfOfUser <user> -OnBehalfOfUserRole <role>`` on a VMM call,
so that VMM enforces the tenant's user role (scope and permissions) as a second gate.

``-OnBehalfOfUserRole`` takes a UserRole object, so each call is one constant script (below,
fixed text chosen by the operation, never built from input) that fetches the role by ID and
passes it on; every value (VM or checkpoint ID, user, role ID, names) is bound as a parameter.
"""
from __future__ import annotations

import dataclasses
import uuid

ROLE = "$role = Get-SCUserRole -ID $RoleID\n"
AS_TENANT = "-OnBehalfOfUser $User -OnBehalfOfUserRole $role"
ASYNC = "-RunAsynchronously -JobVariable $JobVariable | Out-Null"
ACTION_PARAMS = "param($TargetID, $User, $RoleID, $JobVariable, $Name, $Description)\n"

# operation -> (how the target is fetched, the cmdlet acting on it)
_ACTIONS = {
    "start": ("$vm = Get-SCVirtualMachine -ID $TargetID", "Start-SCVirtualMachine -VM $vm"),
    "shutdown": ("$vm = Get-SCVirtualMachine -ID $TargetID", "Stop-SCVirtualMachine -VM $vm -Shutdown"),
    "turnoff": ("$vm = Get-SCVirtualMachine -ID $TargetID", "Stop-SCVirtualMachine -VM $vm -Force"),
    "save": ("$vm = Get-SCVirtualMachine -ID $TargetID", "Stop-SCVirtualMachine -VM $vm -SaveState"),
    "checkpoint": ("$vm = Get-SCVirtualMachine -ID $TargetID",
                   "New-SCVMCheckpoint -VM $vm -Name $Name -Description $Description"),
    "restore": ("$cp = Get-SCVMCheckpoint -ID $TargetID", "Restore-SCVMCheckpoint -VMCheckpoint $cp"),
    "remove_checkpoint": ("$cp = Get-SCVMCheckpoint -ID $TargetID", "Remove-SCVMCheckpoint -VMCheckpoint $cp"),
}
ACTION_SCRIPTS = {op: f"{ACTION_PARAMS}{ROLE}{get}\n{act} {AS_TENANT} {ASYNC}" for op, (get, act) in _ACTIONS.items()}

GET_VM_SCRIPT = f"param($VMID, $User, $RoleID)\n{ROLE}Get-SCVirtualMachine -ID $VMID {AS_TENANT}"
VM_CHECKPOINTS_SCRIPT = (f"param($VMID, $User, $RoleID)\n{ROLE}"
                         f"Get-SCVirtualMachine -ID $VMID {AS_TENANT} | Get-SCVMCheckpoint {AS_TENANT}")
ALL_CHECKPOINTS_SCRIPT = f"param($User, $RoleID)\n{ROLE}Get-SCVMCheckpoint {AS_TENANT}"


@dataclasses.dataclass(frozen=True)
class OnBehalfOf:
    """A tenant user (``DOMAIN\\name`` as the VMM user role lists its members) and the ID of
    the user role to act in (VMM's UserRole ID, a GUID)."""
    user: str
    role_id: str

    def __post_init__(self):
        if not str(self.user).strip():
            raise ValueError("on behalf of: the user is empty")
        try:
            uuid.UUID(str(self.role_id))
        except ValueError:
            raise ValueError(f"on behalf of: the user role ID {self.role_id!r} is not a GUID") from None

    @classmethod
    def of(cls, value) -> "OnBehalfOf | None":
        """None, an OnBehalfOf, or a (user, role ID) pair."""
        if value is None or isinstance(value, cls):
            return value
        user, role_id = value
        return cls(str(user), str(role_id))

    def params(self) -> dict:
        return {"User": self.user, "RoleID": self.role_id}
