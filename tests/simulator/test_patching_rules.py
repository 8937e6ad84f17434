"""Patching rules in the simulator's engine (no wire): reboots through ConfigMgr, a host that does
not respond refuses VMM work, the site drive, the client actions the simulator does not support."""
import time

import pytest

from tests.simulator.sim_helpers import engine as make_engine, pipe, raises, script

SITE = "Import-Module ConfigurationManager\nSet-Location CM1:\n"
STATUS = SITE + ("$d = Get-CMSoftwareUpdateDeployment -Name '2026-12 Hyper-V Hosts - Patch Window'\n"
                 "$d | Get-CMSoftwareUpdateDeploymentStatus | Get-CMDeploymentStatusDetails")


@pytest.fixture
def eng():
    from ops.simulator import scenario
    from ops.simulator.engine import SimEngine

    e = SimEngine(scenario.build("demo", time_scale=0.0005))
    # keep hv-b01 down once it reboots, so "while it reboots" is not a race
    e.control({"op": "fault", "cmdlet": "Host-Reboot", "target": "hv-b01", "mode": "hang"})
    return e


def vm(eng, name):
    return next(v for v in eng.control({"op": "state"})["vms"] if v["name"] == name)


def enrol_b01(eng, s):
    """HV-B01 joins the window collection; wait (60 s at most) until the refresh made it a member."""
    script(s, SITE + "Add-CMDeviceCollectionDirectMembershipRule -CollectionName 'Hyper-V Patch Window' "
                     "-ResourceId 16777224")
    script(s, SITE + "Invoke-CMCollectionUpdate -Name 'Hyper-V Patch Window'")
    end = time.monotonic() + 60
    while eng.control({"op": "state"})["patching"]["collections"]["Hyper-V Patch Window"] != ["HV-B01"]:
        assert time.monotonic() < end, "the collection was never refreshed"
        time.sleep(0.01)


def responding(eng, host):
    return eng.control({"op": "state"})["patching"]["hosts"][host]["responding"]


def test_configmgr_reboot_action_takes_the_host_down_and_its_running_vms_off(eng):
    s = eng.open_session("slipway")
    assert vm(eng, "web02")["status"] == "Running" and vm(eng, "sql02")["status"] == "Saved"
    script(s, SITE + "Invoke-CMClientAction -DeviceName HV-B01 -ActionType ClientNotificationRebootMachine")
    assert not responding(eng, "hv-b01.contoso.com")
    assert vm(eng, "web02")["status"] == "PowerOff", "a running VM goes off with its host"
    assert vm(eng, "sql02")["status"] == "Saved", "a saved VM stays saved"
    out = script(s, "$h = Get-SCVMHost -ComputerName hv-b01\n$h.CommunicationState")
    assert str(out.outputs[0]) == "NotResponding"
    err = raises(script, s, "$vm = Get-SCVirtualMachine -Name web02\nStart-SCVirtualMachine -VM $vm")
    assert "(Error ID: 2916)" in err.message and "hv-b01.contoso.com was lost" in err.message
    err = raises(script, s, "$vm = Get-SCVirtualMachine -Name app02\n$h = Get-SCVMHost -ComputerName hv-b01\n"
                            "Move-SCVirtualMachine -VM $vm -VMHost $h")
    assert "(Error ID: 2916)" in err.message, "nothing moves to a host that does not respond"
    err = raises(script, s, "Get-SCVMHost -ComputerName hv-b01 | Get-SCStorageVolume")
    assert "(Error ID: 2916)" in err.message
    eng.control({"op": "clear_faults"})
    assert responding(eng, "hv-b01.contoso.com")
    assert vm(eng, "web02")["status"] == "PowerOff", "the host comes back; its VMs stay off"


def test_a_policy_request_to_a_client_that_is_down_is_lost(eng):
    s = eng.open_session("slipway")
    enrol_b01(eng, s)
    script(s, SITE + "Invoke-CMClientAction -DeviceId 16777224 -ActionType ClientNotificationRebootMachine")
    script(s, SITE + "Invoke-CMClientAction -DeviceId 16777224 -ActionType ClientNotificationRequestMachinePolicyNow")
    eng.control({"op": "clear_faults"})
    host = eng.control({"op": "state"})["patching"]["hosts"]["hv-b01.contoso.com"]
    assert host["responding"] and len(host["pending_updates"]) == 3, "nothing was installed"
    assert [(o.get("StatusType"), o.get("StatusDescription")) for o in script(s, STATUS).outputs] == [(4, "Unknown")], \
        "the client never started the deployment"


def test_configmgr_cmdlets_refuse_bad_input(eng):
    s = eng.open_session("slipway")
    err = raises(script, s, "Get-CMDeviceCollection")
    assert "connect to a Configuration Manager drive" in err.message
    err = raises(script, s, "Set-Location XYZ:")
    assert "A drive with the name 'XYZ' does not exist" in err.message
    err = raises(script, s, SITE + "Invoke-CMClientAction -DeviceName HV-B01 -ActionType DoSomething")
    assert "does not belong to the set" in err.message
    err = raises(script, s, SITE + "Invoke-CMClientAction -DeviceName HV-B01 -ActionType ClientNotificationRequestHWInvNow")
    assert "not supported by this simulator" in err.message
    err = raises(script, s, SITE + "Invoke-CMClientAction -DeviceName HV-ZZ9 -ActionType ClientNotificationRequestMachinePolicyNow")
    assert err.message == "No object corresponds to the specified parameters."
    err = raises(script, s, "Get-CimInstance -Namespace root/SMS/site_CM1 -ClassName SMS_UpdateComplianceStatus "
                            "-Filter \"ResourceID = 1 OR 1 = 1\"")
    assert "Invalid query" in err.message
    assert script(s, SITE + "Get-Location").outputs == ["CM1:\\"], "the site drive is the location"
    out = pipe(s, ("Get-CMDeviceCollection", [("Name", "Hyper-V*")]))
    assert [o.get("Name") for o in out.outputs] == ["Hyper-V Hosts", "Hyper-V Patch Window", "Hyper-V Hold"]


def test_a_fabric_without_a_site_has_no_configmgr_module():
    s = make_engine().open_session("slipway")
    err = raises(script, s, "Import-Module ConfigurationManager")
    assert "was not loaded because no valid module file was found" in err.message


def test_a_drain_never_sends_vms_to_a_node_that_is_rebooting(eng):
    s = eng.open_session("slipway")
    script(s, "Get-SCVMHost -ComputerName hv-b01 | Restart-SCVMHost")
    assert not responding(eng, "hv-b01.contoso.com")
    on_b02 = [v["name"] for v in eng.control({"op": "state"})["vms"]
              if v["host"] == "hv-b02.contoso.com" and v["status"] == "Running"]
    script(s, "Get-SCVMHost -ComputerName hv-b02 | Disable-SCVMHost -MoveWithinCluster")
    after = {v["name"]: v for v in eng.control({"op": "state"})["vms"]}
    assert on_b02 and all(after[n]["host"] != "hv-b01.contoso.com" for n in on_b02)
    assert any(after[n]["host"] == "hv-b03.contoso.com" for n in on_b02), "the HA VMs went to the node that is up"


def test_a_reboot_cuts_off_an_install_in_progress(eng):
    s = eng.open_session("slipway")
    eng.control({"op": "fault", "cmdlet": "Install-Update", "target": "hv-b01", "mode": "hang"})
    enrol_b01(eng, s)
    script(s, SITE + "Invoke-CMClientAction -DeviceName HV-B01 -ActionType ClientNotificationRequestMachinePolicyNow")
    status = STATUS
    assert [o.get("StatusDescription") for o in script(s, status).outputs] == ["Installing updates"]
    script(s, "Get-SCVMHost -ComputerName hv-b01 | Restart-SCVMHost")
    assert [(o.get("StatusType"), o.get("StatusDescription")) for o in script(s, status).outputs] == [(4, "Unknown")]


def test_a_state_file_from_before_patching_gets_the_scenarios_patching(tmp_path):
    import json

    from ops.simulator import scenario
    from ops.simulator.engine import SimEngine

    path = tmp_path / "old.json"
    data = scenario.build("demo").to_dict()
    del data["patching"]
    data["vms"][0]["status"] = "Saved" if data["vms"][0]["status"] != "Saved" else "PowerOff"
    path.write_text(json.dumps(data))
    e = SimEngine.from_scenario("demo", state_file=str(path))
    st = e.control({"op": "state"})
    changed = data["vms"][0]
    assert next(v for v in st["vms"] if v["name"] == changed["name"])["status"] == changed["status"], \
        "the saved state is kept"
    assert st["patching"]["site_code"] == "CM1"
    assert len(st["patching"]["hosts"]["hv-b01.contoso.com"]["pending_updates"]) == 3
