"""The fabric client against the simulator, through the real pypsrp client."""
import datetime as dt
import socket
import threading

import pytest

from ops.fabric import errors, scom, vmm
from ops.fabric.session import FabricSession, ServerSettings, session_for
from ops.models import ServerConnection

pytestmark = pytest.mark.django_db

HOSTILE = ["it's", 'say "hi"', "$(Remove-SCVirtualMachine)", "a; Stop-SCVirtualMachine -Force", "line1\nline2",
           "ünïcødé ✓ 名前", "`$x", "@{a=1}"]


def vm_named(sim, name):
    return next(v for v in vmm.list_vms(session_for(sim.vmm)) if v.name == name)


def first_vm(sim, status="Running", ha=None):
    for v in vmm.list_vms(session_for(sim.vmm)):
        if v.status == status and (ha is None or v.is_highly_available == ha):
            return v
    raise AssertionError(f"demo scenario has no {status} VM")


def test_inventory_calls_return_the_demo_fabric(sim):
    s = session_for(sim.vmm)
    clusters = vmm.list_clusters(s)
    hosts = vmm.list_hosts(s)
    vms = vmm.list_vms(s)
    assert len(clusters) == 2
    assert len(hosts) == 8
    assert 50 <= len(vms) <= 80
    assert {v.status for v in vms} >= {"Running", "PowerOff", "Saved"}
    assert any(v.is_highly_available for v in vms) and any(not v.is_highly_available for v in vms)
    assert all(v.custom.get("Custom1") for v in vms if v.custom), "batch numbers are in Custom1"
    assert len(vmm.list_clouds(s)) == 3
    assert all(h.total_memory_mb > 0 for h in hosts)


def test_checkpoint_lifecycle_through_jobs(sim):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "PowerOff")
    before = len(vmm.list_checkpoints(s, vm.id))
    job = vmm.new_checkpoint(s, vm.id, "before patch", "taken by a test", vm_name=vm.name)
    assert job.id and job.status in ("Running", "Completed")
    seen = []
    done = vmm.wait_job(s, job, timeout=10, on_progress=lambda j: seen.append(j.progress))
    assert done.succeeded and seen[-1] == 100
    cps = vmm.list_checkpoints(s, vm.id)
    assert len(cps) == before + 1
    new = next(c for c in cps if c.name == "before patch")
    assert new.description == "taken by a test" and new.added_at is not None
    vmm.wait_job(s, vmm.remove_checkpoint(s, new.id, label=new.name), timeout=60)
    assert len(vmm.list_checkpoints(s, vm.id)) == before


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_arrive_literally(sim, name):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "PowerOff")
    vmm.wait_job(s, vmm.new_checkpoint(s, vm.id, name, name), timeout=60)
    names = [c.name for c in vmm.list_checkpoints(s, vm.id)]
    assert name in names
    # and nothing else happened to the fabric: every VM still exists with its status
    assert sim.vm(vm.name)["status"] == "PowerOff"


def test_hostile_value_in_custom_property_is_stored_as_text(sim):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "Running")
    vmm.set_custom_property(s, vm.id, 9, "x'; Stop-SCVirtualMachine -VM $vm -Force; '")
    again = vmm.get_vm(s, vm.id)
    assert again.custom["Custom9"] == "x'; Stop-SCVirtualMachine -VM $vm -Force; '"
    assert again.status == "Running"


def test_start_running_vm_is_a_command_error_naming_server_cmdlet_and_vm(sim):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "Running")
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.wait_job(s, vmm.start_vm(s, vm.id, vm_name=vm.name), timeout=60)
    text = str(info.value)
    assert text.startswith("VMM server vmm01: Start-SCVirtualMachine on " + vm.name + " failed: ")
    assert len(info.value.message) > 10


def test_unknown_vm_is_not_found(sim):
    s = session_for(sim.vmm)
    with pytest.raises(errors.NotFound):
        vmm.get_vm(s, "6f1c2c56-0000-4000-8000-000000000000")
    with pytest.raises(errors.NotFound) as info:
        vmm.new_checkpoint(s, "6f1c2c56-0000-4000-8000-000000000000", "x", vm_name="ghost")
    assert "ghost" in str(info.value)


def test_injected_job_failure_surfaces_the_servers_message(sim):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "PowerOff")
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": vm.name, "mode": "fail",
                 "message": "Insufficient disk space on CSV01", "times": 1})
    with pytest.raises((errors.JobFailed, errors.FabricCommandError)) as info:
        vmm.wait_job(s, vmm.new_checkpoint(s, vm.id, "cp"), timeout=60)
    assert "Insufficient disk space on CSV01" in str(info.value)
    assert "vmm01" in str(info.value)


def test_hung_job_times_out_with_a_clear_error(sim):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "PowerOff")
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": vm.name, "mode": "hang"})
    job = vmm.new_checkpoint(s, vm.id, "cp", vm_name=vm.name)
    with pytest.raises(errors.FabricTimeout) as info:
        vmm.wait_job(s, job, timeout=1.0, poll=0.1)
    assert "after 1 s" in str(info.value) and vm.name in str(info.value)


def test_busy_vm_refuses_a_second_job(sim):
    s = session_for(sim.vmm)
    vm = first_vm(sim, "PowerOff")
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": vm.name, "mode": "hang"})
    vmm.new_checkpoint(s, vm.id, "first", vm_name=vm.name)
    with pytest.raises(errors.VMBusy):
        vmm.new_checkpoint(s, vm.id, "second", vm_name=vm.name)


def test_wrong_password_is_an_auth_error(sim):
    settings = ServerSettings.from_connection(sim.vmm)
    bad = FabricSession(ServerSettings(**{**settings.__dict__, "password": "wrong"}))
    with pytest.raises(errors.FabricAuthError) as info:
        vmm.list_clouds(bad)
    assert "vmm01" in str(info.value) and "credentials" in str(info.value)
    assert "wrong" not in str(info.value)


def test_unreachable_server(sim):
    from ops.simproc import free_port

    settings = ServerSettings.from_connection(sim.vmm)
    gone = FabricSession(ServerSettings(**{**settings.__dict__, "port": free_port(), "timeout": 3}))
    with pytest.raises(errors.FabricUnreachable) as info:
        vmm.list_clouds(gone)
    assert "cannot connect" in str(info.value)


def test_server_that_stops_answering_times_out(sim):
    settings = ServerSettings.from_connection(sim.vmm)
    s = FabricSession(ServerSettings(**{**settings.__dict__, "timeout": 2}))
    vmm.list_clouds(s)  # pool opened while the server answers
    sim.control({"op": "server_down", "value": True})
    try:
        with pytest.raises((errors.FabricTimeout, errors.FabricUnreachable)):
            vmm.list_clouds(s)
    finally:
        sim.control({"op": "server_down", "value": False})
    assert vmm.list_clouds(s), "the session recovers once the server answers again"


def test_drain_and_move_back(sim):
    s = session_for(sim.vmm)
    hosts = [h for h in vmm.list_hosts(s) if h.cluster_name]
    host = hosts[0]
    on_host = [v for v in vmm.list_vms(s) if v.host_name == host.name]
    running_ha = [v for v in on_host if v.status == "Running" and v.is_highly_available]
    vmm.wait_job(s, vmm.disable_host(s, host.name), timeout=60)
    after = {v.id: v for v in vmm.list_vms(s)}
    assert all(after[v.id].host_name != host.name for v in running_ha)
    assert next(h for h in vmm.list_hosts(s) if h.name == host.name).in_maintenance
    vmm.wait_job(s, vmm.enable_host(s, host.name), timeout=60)
    assert all(vmm.get_vm(s, v.id).host_name != host.name for v in running_ha), "Enable-SCVMHost moves nothing back"
    for v in running_ha:
        vmm.wait_job(s, vmm.move_vm(s, v.id, host.name, vm_name=v.name), timeout=60)
        assert vmm.get_vm(s, v.id).host_name == host.name


def test_scom_maintenance_mode_round_trip(sim):
    s = session_for(sim.scom)
    vm = first_vm(sim, "Running")
    assert scom.get_maintenance(s, vm.name) is None
    end = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)
    scom.start_maintenance(s, vm.name, end, "PlannedOther", "checkpoint 'batch 3'")
    mm = scom.get_maintenance(s, vm.name)
    assert mm is not None and mm.comment == "checkpoint 'batch 3'"
    assert scom.stop_maintenance(s, vm.name) is True
    assert scom.get_maintenance(s, vm.name) is None
    assert scom.stop_maintenance(s, vm.name) is False


def test_sessions_are_shared_by_threads(sim):
    s = session_for(sim.vmm)
    results, failures = [], []

    def worker():
        try:
            for _ in range(5):
                results.append(len(vmm.list_clouds(s)))
        except Exception as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    [t.start() for t in threads]
    [t.join(30) for t in threads]
    assert not failures and results == [3] * 30


def test_https_with_a_self_signed_certificate(sim, db):
    from ops.models import ServerConnection
    from ops.simulator.server import start_simulator

    server = start_simulator(sim.engine, port=0, username="slipway", password="tls-pass-1", https=True)
    try:
        conn = ServerConnection(name="vmm-tls", kind="vmm", host=server.host, port=server.port, use_https=True,
                                auth="basic", cert_validation=False, username="slipway")
        conn.set_password("tls-pass-1")
        conn.save()
        assert len(vmm.list_clouds(session_for(conn))) == 3
        conn.cert_validation = True
        conn.save()
        with pytest.raises(errors.FabricUnreachable) as info:
            vmm.list_clouds(session_for(conn))
        assert "vmm-tls" in str(info.value)
    finally:
        server.stop()


def test_an_unreachable_server_is_named_with_the_cause_not_a_urllib3_repr():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    conn = ServerConnection(name="dead", kind="vmm", host="127.0.0.1", port=port, auth="basic", username="u",
                            operation_timeout=5)
    conn.set_password("p")
    session = FabricSession(ServerSettings.from_connection(conn))
    try:
        with pytest.raises(errors.FabricUnreachable) as info:
            session.run([], cmdlet="Get-SCVMMServer")
    finally:
        session.close()
    text = str(info.value)
    assert f"cannot connect to 127.0.0.1:{port} (Connection refused)" in text
    assert "HTTPConnectionPool" not in text and "Max retries" not in text
