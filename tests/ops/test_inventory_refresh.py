"""When a run ends, the VMs it touched are re-read from the fabric at once, not at the next sync."""
import pytest

from ops.inventory import refresh
from ops.inventory.sync import sync_connection
from ops.models import Checkpoint, Run, SyncRecord, VirtualMachine
from ops.services.runs import start_run

from ._engine_support import batch_vms, driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("full_sync_above", [200, 0])
def test_a_batch_runs_vms_show_their_new_checkpoints_when_it_ends(sim, operator, driver, monkeypatch, full_sync_above):
    monkeypatch.setattr(refresh, "FULL_SYNC_ABOVE", full_sync_above)
    assert sync_connection(sim.vmm).ok
    names = sorted(batch_vms(sim, 3))
    before = {n: VirtualMachine.objects.get(name=n).checkpoint_count for n in names}
    run = start_run(operator, "batch-checkpoint", {"batch": "3", "scom": "none"})
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    for n in names:
        vm = VirtualMachine.objects.get(name=n)
        assert vm.checkpoint_count == before[n] + 1, n
        assert Checkpoint.objects.filter(vm=vm).count() == before[n] + 1, n
    full = SyncRecord.objects.filter(requested_by=f"run {run.pk}").exists()
    assert full is (full_sync_above == 0)  # many VMs: one full sync; few: only them
