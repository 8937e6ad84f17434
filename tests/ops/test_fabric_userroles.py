"""User roles and calls made on behalf of a tenant, through the real pypsrp client against the
in-process simulator's demo fabric (roles Contoso Gold, Contoso Silver, Fabrikam Dev)."""
import pytest

from ops.fabric import errors, userroles, vmm
from ops.fabric.commands import cmd
from ops.fabric.session import session_for

pytestmark = pytest.mark.django_db

HOSTILE = ["it's", 'say "hi"', "$(Remove-SCUserRole)", "a; Stop-SCVirtualMachine -Force", "line1\nline2",
           "ünïcødé ✓", "*"]
ALICE, CAROL = "CONTOSO\\alice", "FABRIKAM\\carol"


def role(s, name):
    return userroles.get_user_role(s, name=name)


def vm_in(s, cloud, status=None, role_name=None):
    """A demo VM in ``cloud`` that belongs to ``role_name`` (read back on behalf of alice or carol)."""
    r = role(s, role_name)
    user = CAROL if role_name.startswith("Fabrikam") else ALICE
    for v in vmm.list_vms(s):
        if v.cloud_name == cloud and (status is None or v.status == status):
            try:
                return vmm.get_vm(s, v.id, on_behalf_of=(user, r.id))
            except errors.NotFound:
                continue
    raise AssertionError(f"no {status} VM of {role_name} in {cloud}")


def job_owner(s, job_id):
    rows = vmm._query(s, [cmd("Get-SCJob", ID=job_id)], ("Owner",), cmdlet="Get-SCJob", target=job_id)
    return rows[0]["Owner"]


def test_demo_roles_read_back(sim):
    s = session_for(sim.vmm)
    gold, silver, dev = role(s, "Contoso Gold"), role(s, "Contoso Silver"), role(s, "Fabrikam Dev")
    assert gold.members == [ALICE, "CONTOSO\\bob"] and gold.clouds == ["Gold"] and gold.profile == "TenantAdmin"
    assert gold.checkpoint_permission("Gold") == "Checkpoint"
    assert silver.checkpoint_permission("Silver") == "CheckpointRestoreOnly"
    assert dev.members == [CAROL] and dev.checkpoint_permission("Dev") == "Checkpoint"
    with pytest.raises(errors.NotFound, match="no user role is named Contoso"):
        role(s, "Contoso")


def test_checkpoint_on_behalf_of_a_tenant_is_owned_by_the_tenant(sim):
    s = session_for(sim.vmm)
    gold = role(s, "Contoso Gold")
    vm = vm_in(s, "Gold", "PowerOff", "Contoso Gold")
    job = vmm.new_checkpoint(s, vm.id, "tenant cp", "mine", vm_name=vm.name, on_behalf_of=(ALICE, gold.id))
    assert vmm.wait_job(s, job, timeout=30).succeeded
    assert job_owner(s, job.id) == ALICE
    cps = vmm.list_checkpoints(s, vm.id, on_behalf_of=(ALICE, gold.id))
    new = next(c for c in cps if c.name == "tenant cp")
    job = vmm.restore_checkpoint(s, new.id, label=new.name, on_behalf_of=(ALICE, gold.id))
    assert vmm.wait_job(s, job, timeout=30).succeeded
    job = vmm.remove_checkpoint(s, new.id, label=new.name, on_behalf_of=(ALICE, gold.id))
    assert vmm.wait_job(s, job, timeout=30).succeeded and job_owner(s, job.id) == ALICE


def test_refusals_name_server_cmdlet_target_and_change_nothing(sim):
    s = session_for(sim.vmm)
    gold, silver, dev = role(s, "Contoso Gold"), role(s, "Contoso Silver"), role(s, "Fabrikam Dev")
    silver_vm = vm_in(s, "Silver", "Running", "Contoso Silver")
    before = len(vmm.list_checkpoints(s, silver_vm.id))
    # the role lacks Checkpoint (view and restore only)
    with pytest.raises(errors.AccessDenied) as exc:
        vmm.new_checkpoint(s, silver_vm.id, "x", vm_name=silver_vm.name, on_behalf_of=(ALICE, silver.id))
    assert str(exc.value).startswith(f"VMM server vmm01: New-SCVMCheckpoint on {silver_vm.name} failed:")
    assert "lacks the Checkpoint permission in the cloud Silver" in str(exc.value)
    # outside the role's scope (a Silver VM, acting in the Gold role)
    with pytest.raises(errors.AccessDenied, match="not within the scope of the user role Contoso Gold"):
        vmm.new_checkpoint(s, silver_vm.id, "x", vm_name=silver_vm.name, on_behalf_of=(ALICE, gold.id))
    # not a member of the role
    with pytest.raises(errors.AccessDenied, match="FABRIKAM.carol is not a member of the user role Contoso Silver"):
        vmm.start_vm(s, silver_vm.id, vm_name=silver_vm.name, on_behalf_of=(CAROL, silver.id))
    # another tenant's VM is not even found
    with pytest.raises(errors.NotFound):
        vmm.get_vm(s, silver_vm.id, on_behalf_of=(CAROL, dev.id))
    assert vmm.list_checkpoints(s, silver_vm.id, on_behalf_of=(CAROL, dev.id)) == []
    # power: Silver allows Start and Shutdown, not turn off or save
    for method in ("turnoff", "save"):
        with pytest.raises(errors.AccessDenied, match="lacks the"):
            vmm.stop_vm(s, silver_vm.id, method, vm_name=silver_vm.name, on_behalf_of=(ALICE, silver.id))
    assert len(vmm.list_checkpoints(s, silver_vm.id)) == before
    assert vmm.get_vm(s, silver_vm.id).status == "Running"
    job = vmm.stop_vm(s, silver_vm.id, "shutdown", vm_name=silver_vm.name, on_behalf_of=(ALICE, silver.id))
    assert vmm.wait_job(s, job, timeout=30).succeeded and vmm.get_vm(s, silver_vm.id).status == "PowerOff"


def test_plan_changed_to_none_makes_vmm_refuse(sim):
    s = session_for(sim.vmm)
    gold = role(s, "Contoso Gold")
    vm = vm_in(s, "Gold", None, "Contoso Gold")
    job = userroles.remove_checkpoint_permission(s, gold.id, "Gold", "Checkpoint", label=gold.name)
    assert vmm.wait_job(s, job, timeout=30).succeeded
    assert role(s, "Contoso Gold").checkpoint_permission("Gold") == ""
    with pytest.raises(errors.AccessDenied, match="lacks the Checkpoint permission"):
        vmm.new_checkpoint(s, vm.id, "x", vm_name=vm.name, on_behalf_of=(ALICE, gold.id))
    job = userroles.add_checkpoint_permission(s, gold.id, "Gold", "CheckpointRestoreOnly", label=gold.name)
    vmm.wait_job(s, job, timeout=30)
    assert role(s, "Contoso Gold").checkpoint_permission("Gold") == "CheckpointRestoreOnly"


def test_unknown_role_cloud_or_target(sim):
    s = session_for(sim.vmm)
    gold = role(s, "Contoso Gold")
    with pytest.raises(errors.NotFound, match="no cloud is named Platinum"):
        userroles.add_checkpoint_permission(s, gold.id, "Platinum")
    with pytest.raises(errors.NotFound, match="no cloud is named G\\*"):
        userroles.add_scope(s, gold.id, "G*")
    missing = "00000000-0000-0000-0000-000000000001"
    with pytest.raises(errors.NotFound):
        userroles.add_checkpoint_permission(s, missing, "Gold")
    with pytest.raises(errors.NotFound):
        vmm.new_checkpoint(s, missing, "x", on_behalf_of=(ALICE, gold.id))
    with pytest.raises(ValueError):
        vmm.new_checkpoint(s, missing, "x", on_behalf_of=(ALICE, "not-a-guid"))
    assert role(s, "Contoso Gold").checkpoint_permission("Gold") == "Checkpoint"


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_role_names_are_just_names(sim, name):
    s = session_for(sim.vmm)
    created = userroles.create_user_role(s, name, description=name)
    assert created.name == name and created.description == name
    assert role(s, name).id == created.id
    r = userroles.add_member(s, created.id, "CONTOSO\\dave", label=name)
    r = userroles.add_scope(s, created.id, "Dev", label=name)
    assert r.members == ["CONTOSO\\dave"] and r.clouds == ["Dev"]
    vmm.wait_job(s, userroles.add_checkpoint_permission(s, created.id, "Dev", label=name), timeout=30)
    assert role(s, name).checkpoint_permission("Dev") == "Checkpoint"
    assert userroles.remove_member(s, created.id, "CONTOSO\\dave", label=name).members == []
    assert {r.name for r in vmm.list_user_roles(s)} >= {"Contoso Gold", "Contoso Silver", "Fabrikam Dev", name}
    userroles.remove_user_role(s, created.id, label=name)
    with pytest.raises(errors.NotFound):
        role(s, name)


def test_bad_member_is_refused_with_the_server_s_message(sim):
    s = session_for(sim.vmm)
    gold = role(s, "Contoso Gold")
    with pytest.raises(errors.FabricCommandError, match="Unable to find the user or group") as exc:
        userroles.add_member(s, gold.id, "eve\n$(x)", label=gold.name)
    assert "Set-SCUserRole on Contoso Gold" in str(exc.value)
    assert role(s, "Contoso Gold").members == [ALICE, "CONTOSO\\bob"]
    with pytest.raises(errors.FabricCommandError, match="already exists"):
        userroles.create_user_role(s, "Contoso Gold")
