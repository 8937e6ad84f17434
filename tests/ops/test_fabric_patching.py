"""Patching through the real pypsrp client against the simulator (the demo fabric, 100x faster):
ConfigMgr membership, refresh, machine policy, install, pending restart, reboot, NotResponding,
back, compliant; each patching fault; persistence across a simulator restart.

Demo: CLU-B = hv-b01..03, every node needs KB5048811 (no restart), KB5048661 and KB5049614
(restart); deployment "2026-12 Hyper-V Hosts - Patch Window" targets "Hyper-V Patch Window".
"""
import time

import pytest

from ops.fabric import configmgr as cm, errors, vmm, vmm_hosts
from ops.fabric.session import session_for

DEPLOYMENT = "2026-12 Hyper-V Hosts - Patch Window"
WINDOW = "Hyper-V Patch Window"
DEADLINE = 60


def wait_for(fn, what, timeout=DEADLINE, poll=0.05):
    end = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


@pytest.fixture
def sessions(sim, configmgr):
    return session_for(sim.vmm), session_for(configmgr)


def enrol(c, host="hv-b01.contoso.com"):
    """The node joins the window collection and the refresh makes it a member."""
    dep = cm.get_deployment(c, name=DEPLOYMENT)
    dev = cm.get_device(c, host)
    cm.add_to_collection(c, dep.collection_id, dev)
    before = cm.refresh_collection(c, dep.collection_id)
    cm.wait_collection_refreshed(c, dep.collection_id, before, timeout=DEADLINE, poll=0.05)
    return dep, dev


def status_when(c, dep, dev, predicate, what):
    return wait_for(lambda: (lambda st: st if st is not None and predicate(st) else None)(cm.device_status(c, dep, dev)), what)


def test_membership_refresh_policy_install_restart_and_compliance(sim, sessions):
    v, c = sessions
    dep = cm.get_deployment(c, name=DEPLOYMENT)
    assert dep.enabled and cm.get_collection(c, dep.collection_id).name == WINDOW
    group = cm.list_update_groups(c)[0]
    assert group.ci_id == dep.update_group_ci_id and len(group.update_ci_ids) == 3 and group.deployed
    dev = cm.get_device(c, "hv-b01.contoso.com")
    assert (dev.name, dev.is_client, dev.client_active, dev.online) == ("HV-B01", True, True, True)
    assert cm.device_status(c, dep, dev) is None, "not targeted before it is a member"
    needed = cm.pending_updates(c, dep, dev)
    assert [u.article_id for u in needed] == ["KB5048661", "KB5048811", "KB5049614"]
    assert needed[0].title.startswith("2026-12 Cumulative Update for Windows Server 2019") and needed[0].max_execution_s > 0

    # a direct rule counts only after the refresh: a policy request before it installs nothing
    cm.add_to_collection(c, WINDOW, dev)
    cm.add_to_collection(c, WINDOW, dev)  # twice is harmless
    assert cm.get_collection(c, WINDOW).member_count == 0
    cm.request_machine_policy(c, dev)
    before = cm.refresh_collection(c, WINDOW)
    after = cm.wait_collection_refreshed(c, WINDOW, before, timeout=DEADLINE, poll=0.05)
    assert after.member_count == 1 and after.last_refresh_time > before.last_refresh_time
    assert [d.name for d in cm.list_devices(c, WINDOW)] == ["HV-B01"]
    st = cm.device_status(c, dep, dev)
    assert (st.status, st.is_compliant) == ("Unknown", False), "no install without a policy request"

    cm.request_machine_policy(c, dev)
    st = status_when(c, dep, dev, lambda s: s.in_progress, "installing")
    assert st.description == "Installing updates"
    st = status_when(c, dep, dev, lambda s: not s.in_progress, "install end")
    assert st.pending_restart and st.status == "InProgress" and not st.is_compliant and st.error_code == 0
    states = {u.article_id: cm.update_compliance(c, dev)[u.ci_id] for u in cm.list_updates(c, dep.update_group_ci_id)}
    assert {kb: (x.status, x.pending_restart) for kb, x in states.items()} == {
        "KB5048661": ("Required", True), "KB5049614": ("Required", True), "KB5048811": ("Installed", False)}

    facts = vmm_hosts.host_facts(v, "hv-b01.contoso.com")
    assert facts.responding and [a.name for a in facts.adapters] == ["NIC1", "NIC2"] and len(facts.volumes) == 2
    assert sim.vm("web02")["status"] == "Running", "not drained: its VMs go off with the host"
    job = vmm.wait_job(v, vmm_hosts.restart_host(v, "hv-b01.contoso.com"), timeout=DEADLINE, poll=0.02)
    assert job.status == "Completed"
    down = vmm_hosts.host_facts(v, "hv-b01.contoso.com")
    assert (down.responding, down.communication_state, down.volumes) == (False, "NotResponding", [])
    assert {h.name: h.communication_state for h in vmm.list_hosts(v)}["hv-b01.contoso.com"] == "NotResponding"
    assert {x.name: x.status for x in vmm.list_vms(v)}["web02"] == "HostNotResponding"
    assert not cm.get_device(c, "HV-B01").online
    with pytest.raises(errors.FabricCommandError) as info:
        vmm.enable_host(v, "hv-b01.contoso.com")
    assert "(Error ID: 2916)" in str(info.value) and "hv-b01.contoso.com was lost" in str(info.value)
    assert str(info.value).startswith("VMM server vmm01: Enable-SCVMHost on hv-b01.contoso.com failed:")

    back = vmm_hosts.wait_host_responding(v, "hv-b01.contoso.com", timeout=DEADLINE, poll=0.05)
    assert vmm_hosts.differences(facts, back) == []
    assert sim.vm("web02")["status"] == "PowerOff" and sim.vm("sql02")["status"] == "Saved"
    st = status_when(c, dep, dev, lambda s: s.compliant, "compliant after the restart")
    assert st.status == "Success" and st.description == "Compliant"
    assert cm.pending_updates(c, dep, dev) == [], "no applicable update left"

    cm.remove_from_collection(c, WINDOW, dev)
    before = cm.refresh_collection(c, WINDOW)
    assert cm.wait_collection_refreshed(c, WINDOW, before, timeout=DEADLINE, poll=0.05).member_count == 0
    assert cm.device_status(c, dep, dev) is None


def test_an_update_that_fails_reports_error_with_its_code(sim, sessions):
    _, c = sessions
    sim.control({"op": "fault", "cmdlet": "Install-Update", "target": "KB5048661", "mode": "fail",
                 "code": -2147024891})
    dep, dev = enrol(c)
    cm.request_machine_policy(c, dev)
    st = status_when(c, dep, dev, lambda s: not s.in_progress and s.status != "Unknown", "install end")
    assert (st.failed, st.status, st.error_code, st.is_compliant) == (True, "Error", -2147024891, False)
    assert st.description == "Failed to install the updates"
    by_kb = {u.article_id: u.ci_id for u in cm.list_updates(c)}
    states = cm.update_compliance(c, dev)
    assert (states[by_kb["KB5048661"]].status, states[by_kb["KB5048661"]].error_code) == ("Required", -2147024891)
    assert states[by_kb["KB5048811"]].status == "Installed", "the others were installed"
    assert [u.article_id for u in cm.pending_updates(c, dep, dev)] == ["KB5048661", "KB5049614"]


def test_a_hung_install_stays_in_progress_while_another_node_finishes(sim, sessions):
    _, c = sessions
    sim.control({"op": "fault", "cmdlet": "Install-Update", "target": "hv-b01", "mode": "hang"})
    dep, b1 = enrol(c, "hv-b01.contoso.com")
    _, b2 = enrol(c, "hv-b02.contoso.com")
    cm.request_machine_policy(c, b1)
    cm.request_machine_policy(c, b2)
    status_when(c, dep, b2, lambda s: s.pending_restart, "hv-b02 installed")
    assert cm.device_status(c, dep, b1).in_progress, "the hung install does not end"
    sim.control({"op": "clear_faults"})
    status_when(c, dep, b1, lambda s: s.pending_restart, "hv-b01 installed once the hang is cleared")


def test_a_host_that_does_not_come_back_times_out_naming_it(sim, sessions):
    v, _ = sessions
    sim.control({"op": "fault", "cmdlet": "Host-Reboot", "target": "hv-b02", "mode": "hang"})
    vmm.wait_job(v, vmm_hosts.restart_host(v, "hv-b02.contoso.com"), timeout=DEADLINE, poll=0.02)
    with pytest.raises(errors.FabricTimeout) as info:
        vmm_hosts.wait_host_responding(v, "hv-b02.contoso.com", timeout=1.5, poll=0.05)
    assert "host hv-b02.contoso.com still NotResponding" in str(info.value)
    sim.control({"op": "clear_faults"})
    assert vmm_hosts.wait_host_responding(v, "hv-b02.contoso.com", timeout=DEADLINE, poll=0.05).responding


@pytest.mark.parametrize("fault,expected", [
    ({"mode": "lose_adapter", "adapter": "NIC2"}, ["network adapter NIC2 is missing"]),
    ({"mode": "resize_volume", "volume": "C:\\ClusterStorage\\Volume1", "size_gb": 2048},
     ["volume C:\\ClusterStorage\\Volume1 is 2048 GB, was 4096 GB"]),
])
def test_a_host_that_comes_back_different_is_seen(sim, sessions, fault, expected):
    v, _ = sessions
    sim.control({"op": "fault", "cmdlet": "Host-Reboot", "target": "hv-b03", **fault})
    before = vmm_hosts.host_facts(v, "hv-b03.contoso.com")
    vmm.wait_job(v, vmm_hosts.restart_host(v, "hv-b03.contoso.com"), timeout=DEADLINE, poll=0.02)
    after = vmm_hosts.wait_host_responding(v, "hv-b03.contoso.com", timeout=DEADLINE, poll=0.05)
    assert vmm_hosts.differences(before, after) == expected


def test_a_vm_that_cannot_be_moved_back_fails_its_job_and_stays(sim, sessions):
    v, _ = sessions
    sim.control({"op": "fault", "cmdlet": "Move-SCVirtualMachine", "target": "web02", "mode": "fail",
                 "message": "Live migration of web02 failed: the virtual switch is missing on the destination."})
    vm = next(x for x in vmm.list_vms(v) if x.name == "web02")
    with pytest.raises(errors.JobFailed) as info:
        vmm.wait_job(v, vmm.move_vm(v, vm.id, "hv-b02.contoso.com", "web02"), timeout=DEADLINE, poll=0.02)
    assert "virtual switch is missing" in str(info.value)
    assert sim.vm("web02")["host"] == "hv-b01.contoso.com"


def test_errors_name_the_server_cmdlet_target_and_cause(sim, sessions):
    _, c = sessions
    dev = cm.get_device(c, "hv-b01")
    with pytest.raises(errors.NotFound) as info:
        cm.add_to_collection(c, "No Such Collection", dev)
    assert str(info.value) == ("ConfigMgr server cm01: Add-CMDeviceCollectionDirectMembershipRule on HV-B01 in "
                               "No Such Collection failed: No object corresponds to the specified parameters.")
    with pytest.raises(errors.FabricCommandError) as info:
        cm.add_to_collection(c, "SMS00001", dev)
    assert "default collection" in str(info.value)
    with pytest.raises(errors.NotFound) as info:
        cm.get_device(c, "hv-zz9")
    assert "no device is named HV-ZZ9" in str(info.value)
    with pytest.raises(errors.NotFound):
        cm.get_device(c, "hv-*")
    with pytest.raises(errors.NotFound):
        cm.get_deployment(c, name="No such deployment")
    assert cm.get_collection(c, WINDOW).member_count == 0, "nothing changed"


def test_patching_state_survives_a_simulator_restart(sim, sessions, tmp_path, configmgr):
    from ops.fabric.session import close_all
    from tests.conftest import make_connection, start_sim

    v, c = sessions
    dep, dev = enrol(c)
    cm.request_machine_policy(c, dev)
    status_when(c, dep, dev, lambda s: s.pending_restart, "pending restart")
    vmm.wait_job(v, vmm_hosts.restart_host(v, "hv-b01.contoso.com"), timeout=DEADLINE, poll=0.02)
    path = str(tmp_path / "sim.json")
    sim.control({"op": "save", "path": path})
    sim.server.stop()
    close_all()
    engine, server = start_sim(state_file=path)
    try:
        v2 = session_for(make_connection(server, "vmm02", "vmm"))
        c2 = session_for(make_connection(server, "cm02", "configmgr"))
        assert cm.get_collection(c2, WINDOW).member_count == 1
        assert [d.name for d in cm.list_devices(c2, WINDOW)] == ["HV-B01"]
        back = vmm_hosts.wait_host_responding(v2, "hv-b01.contoso.com", timeout=DEADLINE, poll=0.05)
        assert back.responding
        st = status_when(c2, cm.get_deployment(c2, name=DEPLOYMENT), dev, lambda s: s.compliant,
                         "compliant after the restart, across the simulator's restart")
        assert st.status == "Success"
    finally:
        close_all()
        server.stop()


def test_configmgr_cmdlets_run_only_from_the_site_drive(sim, configmgr):
    from ops.fabric.commands import cmd
    from ops.fabric.session import FabricSession, ServerSettings

    raw = FabricSession(ServerSettings.from_connection(configmgr))
    try:
        with pytest.raises(errors.FabricCommandError) as info:
            raw.run([[cmd("Get-CMDevice", Name="HV-B01")]], cmdlet="Get-CMDevice", target="HV-B01")
        assert "must first connect to a Configuration Manager drive" in str(info.value)
        assert cm.site_drive(raw) == "CM1:"
        assert cm.get_device(raw, "hv-b01").resource_id >= 16777220
    finally:
        raw.close()


def test_a_server_without_a_configmgr_site_is_named_as_such():
    from ops.simulator import scenario
    from ops.simulator.engine import SimEngine
    from tests.simulator.sim_helpers import small_fabric
    from tests.simulator.wire_helpers import WIRE_TIME_SCALE, serve

    w = serve(SimEngine(scenario.from_data(small_fabric(), WIRE_TIME_SCALE)))
    try:
        with pytest.raises(errors.FabricCommandError) as info:
            cm.get_device(w.session, "n1")
        assert "Get-PSDrive on CMSite failed: The specified module 'ConfigurationManager' was not loaded" in str(info.value)
    finally:
        w.session.close()
        w.server.stop()
