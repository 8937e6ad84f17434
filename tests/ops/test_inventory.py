"""Inventory sync: what the operator sees after a sync, and what a failed sync leaves."""
import pytest

from ops.fabric import vmm
from ops.fabric.session import session_for
from ops.inventory.sync import sync_connection
from ops.models import Checkpoint, HostCluster, SyncRecord, VirtualMachine, VMHost

pytestmark = pytest.mark.django_db


def test_sync_writes_the_fabric(sim):
    record = sync_connection(sim.vmm, "test")
    assert record.ok, record.error
    state = sim.state()
    assert VirtualMachine.objects.count() == len(state["vms"]) == record.counts["vms"]
    assert HostCluster.objects.count() == 2
    assert VMHost.objects.count() == 8
    assert VMHost.objects.filter(cluster__isnull=True).count() == 1
    vm = VirtualMachine.objects.select_related("host", "cloud").get(name=state["vms"][0]["name"])
    assert vm.host is not None and vm.cloud is not None
    assert vm.status == state["vms"][0]["status"]
    with_cps = VirtualMachine.objects.filter(checkpoint_count__gt=0)
    assert with_cps.exists()
    assert all(v.oldest_checkpoint_at is not None for v in with_cps)
    assert Checkpoint.objects.count() == sum(v.checkpoint_count for v in VirtualMachine.objects.all())


def test_second_sync_updates_and_removes(sim):
    assert sync_connection(sim.vmm).ok
    s = session_for(sim.vmm)
    vm = next(v for v in vmm.list_vms(s) if v.status == "PowerOff")
    vmm.wait_job(s, vmm.new_checkpoint(s, vm.id, "fresh"), timeout=10)
    vmm.wait_job(s, vmm.start_vm(s, vm.id), timeout=10)
    before_pk = VirtualMachine.objects.get(name=vm.name).pk
    assert sync_connection(sim.vmm).ok
    row = VirtualMachine.objects.get(name=vm.name)
    assert row.pk == before_pk, "rows are updated in place, not recreated"
    assert row.status == "Running"
    assert row.checkpoints.filter(name="fresh").exists()
    # a VM the server no longer has disappears from the inventory
    VirtualMachine.objects.create(connection=sim.vmm, vmm_id="11111111-2222-4333-8444-555555555555", name="ghost")
    assert sync_connection(sim.vmm).ok
    assert not VirtualMachine.objects.filter(name="ghost").exists()


def test_failed_sync_changes_nothing_and_says_why(sim):
    assert sync_connection(sim.vmm).ok
    count = VirtualMachine.objects.count()
    sim.vmm.operation_timeout = 5
    sim.vmm.save()
    sim.control({"op": "server_down", "value": True})
    try:
        record = sync_connection(sim.vmm)
    finally:
        sim.control({"op": "server_down", "value": False})
    assert not record.ok
    assert record.error.startswith("VMM server vmm01: ")
    assert VirtualMachine.objects.count() == count
    sim.vmm.refresh_from_db()
    assert sim.vmm.last_error == record.error
    assert SyncRecord.objects.filter(ok=False).count() == 1


def test_named_custom_properties_are_kept(sim):
    assert sync_connection(sim.vmm).ok
    named = [vm for vm in VirtualMachine.objects.all() if set(vm.custom) - {f"Custom{i}" for i in range(1, 11)}]
    assert named, "the demo scenario has VMs with named custom properties"
    vm = named[0]
    state_vm = sim.vm(vm.name)
    assert vm.custom.get("Custom1", "") == (state_vm.get("custom1") or "")


def test_a_vms_user_role_is_read_and_its_absence_tolerated():
    from ops.fabric import vmm
    vm = vmm._vm({"ID": "5B1E0C1A-0000-4000-8000-000000000001", "Name": "web01", "Status": 0,
                  "UserRoleID": "AAAAAAAA-0000-4000-8000-00000000000A", "UserRole": {"Name": "Contoso"}, "Owner": "CONTOSO\\alice"})
    assert (vm.user_role_id, vm.user_role_name, vm.owner) == ("AAAAAAAA-0000-4000-8000-00000000000A", "Contoso", "CONTOSO\\alice")
    bare = vmm._vm({"ID": "5B1E0C1A-0000-4000-8000-000000000002", "Name": "web02", "Status": 0})  # an older VMM / simulator
    assert (bare.user_role_id, bare.user_role_name) == ("", "")
    assert "UserRoleID" in vmm.VM_FIELDS and "UserRole" in vmm.VM_FIELDS
