"""User roles and acting on behalf of a tenant, directly against the engine (ops/simulator/access.py,
roles.py, cmdlets/userroles.py). Fabric: sim_helpers.small_fabric plus a role 'Gold Tenants'
(alice, bob; cloud Gold: Checkpoint, Start, Shutdown) that owns ha1 and web01."""
from __future__ import annotations

import pytest

from ops.simulator.engine import SimEngine
from tests.simulator.sim_helpers import FAST, engine, pipe, raises, small_fabric, vm_state

ROLE = {"name": "Gold Tenants", "members": ["CONTOSO\\alice", "CONTOSO\\bob"], "clouds": ["Gold"],
        "permissions": {"Gold": ["Checkpoint", "Start", "Shutdown"]}}


@pytest.fixture
def eng():
    data = small_fabric()
    data["user_roles"].append(ROLE)
    for vm in data["vms"]:
        if vm["name"] in ("ha1", "web01"):
            vm["user_role"] = "Gold Tenants"
    return engine(data)


@pytest.fixture
def s(eng):
    return eng.open_session("CONTOSO\\admin")


def role(s, name="Gold Tenants"):
    return pipe(s, ("Get-SCUserRole", [("Name", name)])).outputs[0]


def vm(s, name):
    return pipe(s, ("Get-SCVirtualMachine", [("Name", name)])).outputs[0]


def as_(s, user, name="Gold Tenants"):
    return [("OnBehalfOfUser", user), ("OnBehalfOfUserRole", role(s, name))]


def test_tenant_sees_only_the_role_s_vms(s):
    names = [v.get("Name") for v in pipe(s, ("Get-SCVirtualMachine", as_(s, "CONTOSO\\alice"))).outputs]
    assert names == ["ha1", "web01"]
    assert vm(s, "ha1").get("UserRoleID") == role(s).get("ID")
    cps = pipe(s, ("Get-SCVMCheckpoint", as_(s, "CONTOSO\\bob"))).outputs
    assert [c.get("VMName") for c in cps] == ["web01"]


def test_checkpoint_on_behalf_runs_as_the_tenant(eng, s):
    out = pipe(s, ("New-SCVMCheckpoint", [("VM", vm(s, "web01")), ("Name", "mine"), *as_(s, "CONTOSO\\alice")]))
    job = pipe(s, ("Get-SCJob", [("ID", out.outputs[0].get("MostRecentTaskID"))])).outputs[0]
    assert job.get("Owner") == "CONTOSO\\alice" and str(job.get("Status")) == "Completed"
    assert vm_state(eng, "web01")["checkpoints"] == ["old", "mine"]
    state = eng.control({"op": "state"})
    assert state["jobs"][-1]["owner"] == "CONTOSO\\alice" and vm_state(eng, "web01")["user_role"] == "Gold Tenants"
    assert [r["permissions"] for r in state["user_roles"] if r["name"] == "Gold Tenants"] == [
        {"Gold": ["Checkpoint", "Start", "Shutdown"]}]
    pipe(s, ("Get-SCVirtualMachine", [("Name", "off1")]), ("Start-SCVirtualMachine", []))   # the admin's own job
    theirs = pipe(s, ("Get-SCJob", as_(s, "CONTOSO\\bob"))).outputs
    mine = pipe(s, ("Get-SCJob", as_(s, "CONTOSO\\alice"))).outputs
    assert theirs == [] and [j.get("Owner") for j in mine] == ["CONTOSO\\alice"]


@pytest.mark.parametrize("cmdlet, params, why", [
    ("New-SCVMCheckpoint", [("Name", "x")], "not within the scope"),            # solo: in Gold, not the role's
    ("Start-SCVirtualMachine", [], "not within the scope"),
])
def test_vm_outside_the_role_is_refused(eng, s, cmdlet, params, why):
    e = raises(pipe, s, (cmdlet, [("VM", vm(s, "solo")), *params, *as_(s, "CONTOSO\\alice")]))
    assert "(Error ID: 1605)" in e.message and why in e.message and e.category == "PermissionDenied"
    assert vm_state(eng, "solo")["checkpoints"] == []


def test_non_member_is_refused(eng, s):
    e = raises(pipe, s, ("New-SCVMCheckpoint", [("VM", vm(s, "web01")), ("Name", "x"),
                                                *as_(s, "FABRIKAM\\carol")]))
    assert "not a member of the user role Gold Tenants" in e.message
    assert vm_state(eng, "web01")["checkpoints"] == ["old"]


def test_power_needs_the_matching_permission(eng, s):
    ha1 = vm(s, "ha1")
    for switch in ("Force", "SaveState"):      # role has Shutdown, not Stop or Save
        e = raises(pipe, s, ("Stop-SCVirtualMachine", [("VM", ha1), (switch, None), *as_(s, "CONTOSO\\bob")]))
        assert "lacks the" in e.message and "(Error ID: 1605)" in e.message
    assert vm_state(eng, "ha1")["status"] == "Running"
    pipe(s, ("Stop-SCVirtualMachine", [("VM", ha1), ("Shutdown", None), *as_(s, "CONTOSO\\bob")]))
    assert vm_state(eng, "ha1")["status"] == "PowerOff"


def test_restore_only_allows_restore_but_not_create_or_remove(eng, s):
    cloud = pipe(s, ("Get-SCCloud", [("Name", "Gold")])).outputs[0]
    pipe(s, ("Remove-SCUserRolePermission", [("UserRole", role(s)), ("Cloud", cloud), ("Checkpoint", None)]))
    pipe(s, ("Add-SCUserRolePermission", [("UserRole", role(s)), ("Cloud", cloud), ("CheckpointRestoreOnly", None)]))
    assert role(s).get("CloudPermission") == {"Gold": ["Start", "Shutdown", "CheckpointRestoreOnly"]}
    web = vm(s, "web01")
    cp = pipe(s, ("Get-SCVMCheckpoint", [("VM", web)])).outputs[0]
    for cmdlet, params in (("New-SCVMCheckpoint", [("VM", web), ("Name", "x")]),
                           ("Remove-SCVMCheckpoint", [("VMCheckpoint", cp)])):
        e = raises(pipe, s, (cmdlet, [*params, *as_(s, "CONTOSO\\alice")]))
        assert "lacks the Checkpoint permission in the cloud Gold" in e.message
    assert vm_state(eng, "web01")["checkpoints"] == ["old"]
    out = pipe(s, ("Restore-SCVMCheckpoint", [("VMCheckpoint", cp), *as_(s, "CONTOSO\\alice")]))
    assert not out.errors


def test_tenant_cannot_touch_hosts_roles_or_move(s):
    alice = as_(s, "CONTOSO\\alice")
    for command in (("Disable-SCVMHost", [("VMHost", pipe(s, ("Get-SCVMHost", [("ComputerName", "n1")])).outputs[0])]),
                    ("Move-SCVirtualMachine", [("VM", vm(s, "ha1")), ("VMHost", pipe(s, ("Get-SCVMHost", [("ComputerName", "n2")])).outputs[0])]),
                    ("Set-SCUserRole", [("UserRole", role(s)), ("AddMember", ["CONTOSO\\eve"])]),
                    ("Set-SCVirtualMachine", [("VM", vm(s, "ha1")), ("UserRole", role(s, "Tenants"))])):
        e = raises(pipe, s, (command[0], [*command[1], *alice]))
        assert "(Error ID: 1605)" in e.message
    assert role(s).get("Members") == ["CONTOSO\\alice", "CONTOSO\\bob"]


def test_half_an_on_behalf_pair_is_refused(s):
    e = raises(pipe, s, ("Get-SCVirtualMachine", [("OnBehalfOfUser", "CONTOSO\\alice")]))
    assert "must be given together" in e.message


def test_role_lifecycle_and_vm_assignment(eng, s):
    hostile = "it's \"$(Remove-SCUserRole)\"; x\nline2"
    new = pipe(s, ("New-SCUserRole", [("Name", hostile), ("UserRoleProfile", "TenantAdmin"),
                                      ("Description", "d")])).outputs[0]
    assert new.get("Name") == hostile and new.get("Profile") == "TenantAdmin"
    e = raises(pipe, s, ("New-SCUserRole", [("Name", hostile), ("UserRoleProfile", "TenantAdmin")]))
    assert "already exists" in e.message
    dev = pipe(s, ("Get-SCCloud", [("Name", "Dev")])).outputs[0]
    pipe(s, ("Set-SCUserRole", [("UserRole", new), ("AddMember", ["CONTOSO\\dave", "CONTOSO\\erin"]),
                                ("AddScope", dev), ("Permission", ["Checkpoint", "Start"])]))
    pipe(s, ("Set-SCUserRole", [("UserRole", new), ("RemoveMember", ["CONTOSO\\erin"])]))
    got = role(s, hostile)
    assert got.get("Members") == ["CONTOSO\\dave"] and got.get("CloudPermission") == {"Dev": ["Checkpoint", "Start"]}
    e = raises(pipe, s, ("Set-SCUserRole", [("UserRole", new), ("AddMember", ["bad\nname"])]))
    assert "Unable to find the user or group" in e.message and role(s, hostile).get("Members") == ["CONTOSO\\dave"]
    e = raises(pipe, s, ("Set-SCVirtualMachine", [("VM", vm(s, "st1")), ("UserRole", new), ("Owner", "CONTOSO\\zed")]))
    assert "is not a member of the user role" in e.message and vm(s, "st1").get("UserRole") is None
    pipe(s, ("Set-SCVirtualMachine", [("VM", vm(s, "st1")), ("UserRole", new), ("Owner", "CONTOSO\\dave")]))
    st1 = vm(s, "st1")
    assert st1.get("UserRole").get("Name") == hostile and st1.get("Owner") == "CONTOSO\\dave"
    pipe(s, ("Remove-SCUserRole", [("UserRole", new)]))
    assert pipe(s, ("Get-SCUserRole", [("ID", new.get("ID"))])).outputs == []
    assert vm(s, "st1").get("UserRole") is None


def test_roles_and_assignments_persist(tmp_path):
    path = str(tmp_path / "state.json")
    eng = SimEngine.from_scenario("demo", time_scale=FAST, state_file=path)
    s = eng.open_session("admin")
    new = pipe(s, ("New-SCUserRole", [("Name", "Northwind Dev"), ("UserRoleProfile", "TenantAdmin")])).outputs[0]
    dev = pipe(s, ("Get-SCCloud", [("Name", "Dev")])).outputs[0]
    pipe(s, ("Set-SCUserRole", [("UserRole", new), ("AddMember", ["NORTHWIND\\dave"]), ("AddScope", dev)]))
    pipe(s, ("Add-SCUserRolePermission", [("UserRole", new), ("Cloud", dev), ("CheckpointRestoreOnly", None)]))
    pipe(s, ("Get-SCVirtualMachine", [("Name", "web02")]), ("Set-SCVirtualMachine", [("UserRole", new),
                                                                                      ("Owner", "NORTHWIND\\dave")]))
    assert eng.control({"op": "save"})["ok"]
    s2 = SimEngine.from_scenario("demo", time_scale=FAST, state_file=path).open_session("admin")
    back = pipe(s2, ("Get-SCUserRole", [("Name", "Northwind Dev")])).outputs[0]
    assert back.get("Members") == ["NORTHWIND\\dave"] and back.get("CloudPermission") == {"Dev": ["CheckpointRestoreOnly"]}
    web02 = pipe(s2, ("Get-SCVirtualMachine", [("Name", "web02")])).outputs[0]
    assert web02.get("UserRoleID") == back.get("ID") and web02.get("Owner") == "NORTHWIND\\dave"


def test_demo_has_one_role_per_subscription():
    s = SimEngine.from_scenario("demo", time_scale=FAST).open_session("admin")
    roles = {r.get("Name"): r for r in pipe(s, ("Get-SCUserRole", [])).outputs}
    assert roles["Contoso Gold"].get("CloudPermission")["Gold"][0] == "Checkpoint"
    assert roles["Contoso Silver"].get("CloudPermission")["Silver"][0] == "CheckpointRestoreOnly"
    assert roles["Fabrikam Dev"].get("Members") == ["FABRIKAM\\carol"]
    assert roles["Contoso Silver"].get("Members") == ["CONTOSO\\alice", "CONTOSO\\bob"]
    vms = pipe(s, ("Get-SCVirtualMachine", [])).outputs
    by_role = {}
    for v in vms:
        r = v.get("UserRole")
        by_role.setdefault(r.get("Name") if r else None, set()).add(v.get("Cloud").get("Name"))
    assert by_role["Contoso Gold"] == {"Gold"} and by_role["Fabrikam Dev"] == {"Dev"}
    assert None in by_role, "some demo VMs belong to no role"
