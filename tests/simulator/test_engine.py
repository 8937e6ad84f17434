"""The simulator engine: parameter binding, pipelines, scripts, generic cmdlets, jobs,
faults, control ops, scenarios and speed. Talks to the engine directly (no network)."""
from __future__ import annotations

import json
import re
import threading
import uuid

import pytest

from ops.simulator.contract import CommandSpec, SimEnum, SimObject, Statement
from ops.simulator.engine import SimEngine
from tests.simulator.sim_helpers import FAST, FakeOutput, engine, pipe, raises, script, vm_state
from tests.waiting import wait_until


@pytest.fixture
def eng():
    return engine()


@pytest.fixture
def s(eng):
    return eng.open_session("CONTOSO\\admin")


def vm_id(s, name):
    return pipe(s, ("Get-SCVirtualMachine", [("Name", name)])).outputs[0].get("ID")


# ---- binding ---------------------------------------------------------------------------
def test_unknown_cmdlet_is_command_not_found(s):
    e = raises(pipe, s, ("Get-Nope", []))
    assert e.category == "ObjectNotFound" and e.error_id == "CommandNotFoundException"
    assert "The term 'Get-Nope' is not recognized as the name of a cmdlet" in e.message


def test_unknown_parameter_is_named_parameter_not_found(s):
    e = raises(pipe, s, ("Get-SCVirtualMachine", [("Colour", "x")]))
    assert e.error_id == "NamedParameterNotFound" and e.category == "InvalidArgument"
    assert e.message == "A parameter cannot be found that matches parameter name 'Colour'."


def test_parameters_are_case_insensitive_and_abbreviable(s):
    out = pipe(s, ("get-scvmhost", [("compu", "N1")]))
    assert [h.get("Name") for h in out.outputs] == ["n1.contoso.com"]
    e = raises(pipe, s, ("Get-SCVirtualMachine", [("V", "x")]))
    assert e.error_id == "AmbiguousParameter"


def test_string_for_object_parameter_cannot_convert(s):
    host = pipe(s, ("Get-SCVMHost", [("ComputerName", "n2")])).outputs[0]
    e = raises(pipe, s, ("Move-SCVirtualMachine", [("VM", "ha1"), ("VMHost", host)]))
    assert e.error_id == "CannotConvertArgumentNoMessage" and e.category == "InvalidArgument"
    assert e.message == ('Cannot bind parameter \'VM\'. Cannot convert the "ha1" value of type "System.String" '
                         'to type "Microsoft.SystemCenter.VirtualMachineManager.VM".')


def test_bad_guid_and_missing_mandatory(s):
    e = raises(pipe, s, ("Get-SCVirtualMachine", [("ID", "x'; Remove-SCVirtualMachine")]))
    assert e.error_id == "CannotConvertArgumentNoMessage"
    e = raises(pipe, s, ("Start-SCVirtualMachine", []))
    assert e.error_id == "MissingMandatoryParameter" and "VM" in e.message


def test_binding_fails_before_anything_runs(eng, s):
    raises(pipe, s, ("Get-SCVMHost", [("ComputerName", "n1")]), ("Disable-SCVMHost", [("Bogus", None)]))
    assert eng.control({"op": "state"})["hosts"][0]["maintenance"] is False


def test_injection_string_is_only_a_name(eng, s):
    out = pipe(s, ("Get-SCVirtualMachine", [("Name", "x'; Stop-SCVirtualMachine -VM ha1; '")]))
    assert out.outputs == [] and out.errors == []
    assert vm_state(eng, "ha1")["status"] == "Running"


# ---- pipelines and generic cmdlets ---------------------------------------------------------
def test_pipeline_binds_by_value(eng, s):
    out = pipe(s, ("Get-SCVMHost", [("ComputerName", "n1")]), ("Disable-SCVMHost", [("MoveWithinCluster", None)]))
    assert out.outputs[0].get("MaintenanceHost") is True
    assert out.progress and out.progress[-1][2] == 100


def test_select_object_and_convert_to_json(s):
    vid = vm_id(s, "web01")
    out = pipe(s, ("Get-SCVirtualMachine", [("ID", str(vid))]),
               ("Select-Object", [("Property", ["Name", "Status", "AddedTime", "ID", "Cloud"])]),
               ("ConvertTo-Json", [("Compress", None)]))
    text = out.outputs[0]
    data = json.loads(text)
    assert data["Name"] == "web01" and data["Status"] == 0          # enum -> int (PowerShell 5.1)
    assert data["ID"] == str(vid)                                    # Guid -> string
    assert re.fullmatch(r"/Date\(\d+\)/", data["AddedTime"])         # "\/Date(ms)\/"
    assert '"\\/Date(' in text
    assert data["Cloud"]["Name"] == "Gold"
    sel = pipe(s, ("Get-SCVirtualMachine", [("Name", "web01")]), ("Select-Object", [("Property", ["Name"])])).outputs[0]
    assert sel.type_names == ["Selected.Microsoft.SystemCenter.VirtualMachineManager.VM",
                              "System.Management.Automation.PSCustomObject", "System.Object"]
    assert sel.properties == {"Name": "web01"} and str(sel.to_string) == "@{Name=web01}"


def test_convert_to_json_arrays_and_empty(s):
    many = pipe(s, ("Get-SCVirtualMachine", [("All", None)]), ("Select-Object", [("Property", "Name")]),
                ("ConvertTo-Json", [("Compress", None)])).outputs
    assert len(json.loads(many[0])) == 9
    none = pipe(s, ("Get-SCVirtualMachine", [("Name", "nothing")]), ("ConvertTo-Json", []))
    assert none.outputs == []
    deep = pipe(s, ("Get-SCVirtualMachine", [("Name", "web01")]), ("ConvertTo-Json", [("Depth", 0), ("Compress", None)]))
    assert json.loads(deep.outputs[0])["VMHost"] == "n3.contoso.com"   # deeper than Depth -> ToString


def test_expand_property_out_null_and_get_variable(s):
    names = pipe(s, ("Get-SCVMHost", []), ("Select-Object", [("ExpandProperty", "Name")])).outputs
    assert names == ["n1.contoso.com", "n2.contoso.com", "n3.contoso.com", "s1.contoso.com"]
    assert pipe(s, ("Get-SCVMHost", []), ("Out-Null", [])).outputs == []
    script(s, "$answer = 'forty-two'")
    assert pipe(s, ("Get-Variable", [("Name", "answer"), ("ValueOnly", None)])).outputs == ["forty-two"]
    var = pipe(s, ("Get-Variable", [("Name", "answer")])).outputs[0]
    assert var.get("Value") == "forty-two"
    missing = pipe(s, ("Get-Variable", [("Name", "nope")]))
    assert missing.outputs == [] and missing.errors[0].category == "ObjectNotFound"
    with pytest.raises(Exception):
        pipe(s, ("Get-Variable", [("Name", "nope"), ("ErrorAction", "Stop")]))
    assert pipe(s, ("Get-Variable", [("Name", "nope"), ("ErrorAction", "SilentlyContinue")])).errors == []


def test_sessions_have_their_own_variables(eng, s):
    script(s, "$x = 1")
    other = eng.open_session("bob")
    assert script(other, "$x").outputs == []
    assert script(s, "$x").outputs == [1]


# ---- scripts -----------------------------------------------------------------------------
def test_script_params_variables_and_member_access(eng, s):
    out = script(s, "param($Name, $Target)\n$vm = Get-SCVirtualMachine -Name $Name\n"
                    "$h = Get-SCVMHost -ComputerName $Target; Move-SCVirtualMachine -VM $vm -VMHost $h | Out-Null\n"
                    "$vm.HostName; \"moved $Name\"; $vm.VMHost.Name",
                 [("name", "solo"), (None, "s1")])
    assert out.outputs == ["s1.contoso.com", "moved solo", "s1.contoso.com"]
    assert vm_state(eng, "solo")["host"] == "s1.contoso.com"


def test_script_literals_and_switch_values(s):
    out = script(s, "$a = 'it''s'; $b = \"say \"\"hi\"\"\"; $n = 42; $t = $true; $z = $null; $a; $b; $n; $t; $z")
    assert out.outputs == ["it's", 'say "hi"', 42, True]
    out = script(s, "Get-SCVirtualMachine -All:$true | Select-Object -Property Name,Status -First 2")
    assert [o.get("Name") for o in out.outputs] == ["big", "ha1"]


def test_semicolon_inside_string_is_content(eng, s):
    out = script(s, "Get-SCVirtualMachine -Name 'ha1; Stop-SCVirtualMachine -VM x'")
    assert out.outputs == []
    assert vm_state(eng, "ha1")["status"] == "Running"


@pytest.mark.parametrize("text,fragment", [
    ("Get-SCVirtualMachine -Name $(Get-SCVMHost)", "Unexpected token"),
    ("foreach ($v in $vms) { Stop-SCVirtualMachine -VM $v }", "Unexpected token"),
    ("Get-SCVirtualMachine | Where-Object { $_.Name -eq 'x' }", "Unexpected token"),
    ("Get-SCVirtualMachine -Name \"a$(whoami)\"", "Subexpressions are not supported"),
    ("Get-SCVirtualMachine -Name a`;b", "Unexpected token"),
    ("& 'Get-SCVirtualMachine'", "Unexpected token"),
    ("$vm.Stop()", "Unexpected token"),
    ("Get-SCVirtualMachine @params", "Unexpected token"),
    ("if ($true) { 1 }", "Unexpected token"),
])
def test_unsupported_powershell_is_a_parser_error(eng, s, text, fragment):
    e = raises(script, s, "Stop-SCVirtualMachine -VM (Get-SCVirtualMachine) ; " + text
               if text.startswith("$vm") else "$vm = Get-SCVirtualMachine -Name ha1; Stop-SCVirtualMachine -VM $vm\n" + text)
    assert e.category == "ParserError" and fragment in e.message
    assert vm_state(eng, "ha1")["status"] == "Running"      # nothing ran


def test_invoke_expression_is_not_recognized(s):
    e = raises(script, s, "Invoke-Expression 'Stop-SCVirtualMachine'")
    assert e.error_id == "CommandNotFoundException"


def test_script_unknown_param_and_job_variable(eng, s):
    e = raises(script, s, "param($A) $A", [("B", 1)])
    assert e.error_id == "NamedParameterNotFound"
    out = script(s, "$vm = Get-SCVirtualMachine -Name off1\n"
                    "Start-SCVirtualMachine -VM $vm -RunAsynchronously -JobVariable startjob | Out-Null\n"
                    "$startjob.Name")
    assert out.outputs == ["Start virtual machine"]
    wait_until(lambda: script(s, "$startjob.IsCompleted; $startjob.ProgressValue").outputs == [True, 100],
               message="the job in $startjob completes")


# ---- jobs --------------------------------------------------------------------------------
def test_async_call_returns_object_with_job_id(eng, s):
    eng.control({"op": "time_scale", "value": 0.02})      # start = 100 ms
    vm = pipe(s, ("Get-SCVirtualMachine", [("Name", "off1")]),
              ("Start-SCVirtualMachine", [("RunAsynchronously", None)])).outputs[0]
    job_id = vm.get("MostRecentTaskID")
    assert isinstance(job_id, uuid.UUID) and str(vm.get("Status")) == "Starting"
    job = pipe(s, ("Get-SCJob", [("ID", job_id)])).outputs[0]
    assert str(job.get("Status")) == "Running" and 0 <= job.get("ProgressValue") < 100
    assert job.get("ResultObjectID") == vm.get("ID") and job.get("IsCompleted") is False
    assert [j.get("ID") for j in pipe(s, ("Get-SCJob", [("Running", None)])).outputs] == [job_id]
    job = wait_until(lambda: (j := pipe(s, ("Get-SCJob", [("ID", str(job_id))])).outputs[0]).get("IsCompleted") and j,
                     message=f"job {job_id} completes")
    assert str(job.get("Status")) == "Completed" and job.get("ProgressValue") == 100
    assert job.get("ErrorInfo").get("DisplayableErrorCode") == 0 and job.get("EndTime") is not None
    assert vm_state(eng, "off1")["status"] == "Running"


def test_sync_call_writes_progress_and_waits(eng, s):
    eng.control({"op": "time_scale", "value": 0.01})
    out = pipe(s, ("Get-SCVirtualMachine", [("Name", "web01")]), ("New-SCVMCheckpoint", [("Name", "cp1")]))
    cp = out.outputs[0]
    assert cp.get("Name") == "cp1" and cp.type_names[0].endswith("VMCheckpoint")
    assert [p[2] for p in out.progress][-1] == 100 and len(out.progress) >= 2
    assert vm_state(eng, "web01")["checkpoints"] == ["old", "cp1"]


def test_concurrent_sessions(eng):
    eng.control({"op": "time_scale", "value": 0.005})
    errors = []

    def work(name):
        try:
            s = eng.open_session(name)
            for _ in range(3):
                pipe(s, ("Get-SCVirtualMachine", [("Name", name)]), ("New-SCVMCheckpoint", []))
        except Exception as exc:   # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(n,)) for n in ("ha1", "ha2", "web01", "st1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == []
    assert len(vm_state(eng, "web01")["checkpoints"]) == 4 and len(vm_state(eng, "st1")["checkpoints"]) == 3


# ---- faults and control ------------------------------------------------------------------
def test_fault_fail_once_then_succeed(eng, s):
    eng.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "web01", "mode": "fail",
                 "message": "Disk full on CSV1.", "times": 1})
    e = raises(pipe, s, ("Get-SCVirtualMachine", [("Name", "web01")]), ("New-SCVMCheckpoint", [("Name", "x")]))
    assert "Disk full on CSV1." in e.message and "(Error ID: 2912)" in e.message
    assert vm_state(eng, "web01")["checkpoints"] == ["old"]
    pipe(s, ("Get-SCVirtualMachine", [("Name", "web01")]), ("New-SCVMCheckpoint", [("Name", "x")]))
    assert vm_state(eng, "web01")["checkpoints"] == ["old", "x"]


def test_fault_fail_async_shows_in_job(eng, s):
    eng.control({"op": "fault", "cmdlet": "Start-SCVirtualMachine", "target": "off1", "mode": "fail",
                 "message": "Boot failure.", "code": 12345})
    vm = pipe(s, ("Get-SCVirtualMachine", [("Name", "off1")]),
              ("Start-SCVirtualMachine", [("RunAsynchronously", None)])).outputs[0]
    job = wait_until(lambda: (j := pipe(s, ("Get-SCJob", [("ID", vm.get("MostRecentTaskID"))])).outputs[0]).get("IsCompleted")
                     and j, message="the start job ends")
    assert str(job.get("Status")) == "Failed"
    assert job.get("ErrorInfo").get("Problem") == "Boot failure."
    assert job.get("ErrorInfo").get("DisplayableErrorCode") == 12345
    assert vm_state(eng, "off1")["status"] == "PowerOff"


def test_fault_hang_async_and_sync(eng, s):
    eng.control({"op": "fault", "cmdlet": "Disable-SCVMHost", "target": "n1", "mode": "hang"})
    h = pipe(s, ("Get-SCVMHost", [("ComputerName", "n1")]),
             ("Disable-SCVMHost", [("MoveWithinCluster", None), ("RunAsynchronously", None)])).outputs[0]
    # a job started after the hung one completes; the hung one is still where it was
    witness = pipe(s, ("Get-SCVirtualMachine", [("Name", "off1")]),
                   ("Start-SCVirtualMachine", [("RunAsynchronously", None)])).outputs[0].get("MostRecentTaskID")
    wait_until(lambda: pipe(s, ("Get-SCJob", [("ID", witness)])).outputs[0].get("IsCompleted"), message="a later job completes")
    job = pipe(s, ("Get-SCJob", [("ID", h.get("MostRecentTaskID"))])).outputs[0]
    assert str(job.get("Status")) == "Running" and job.get("ProgressValue") == 0
    eng.control({"op": "fault", "cmdlet": "Start-SCVirtualMachine", "mode": "hang"})
    out = FakeOutput()
    stopper = threading.Timer(0.1, out.stop)
    stopper.start()
    e = raises(pipe, s, ("Get-SCVirtualMachine", [("Name", "st2")]), ("Start-SCVirtualMachine", []), out=out)
    assert e.error_id == "PipelineStopped" and stopper.finished.is_set()  # it hung until it was stopped
    assert eng.control({"op": "clear_faults"})["canceled_hung_jobs"] == 2
    job = pipe(s, ("Get-SCJob", [("ID", h.get("MostRecentTaskID"))])).outputs[0]
    assert str(job.get("Status")) == "Canceled"
    drain = pipe(s, ("Get-SCVMHost", [("ComputerName", "n1")]), ("Disable-SCVMHost", [("MoveWithinCluster", None)]))
    assert drain.outputs[0].get("MaintenanceHost") is True       # the host is no longer locked


def test_fault_on_get_cmdlet_and_clear(eng, s):
    eng.control({"op": "fault", "cmdlet": "Get-SCVirtualMachine", "mode": "fail", "message": "VMM is busy."})
    assert "VMM is busy." in raises(pipe, s, ("Get-SCVirtualMachine", [])).message
    assert eng.control({"op": "faults"})["faults"][0]["hits"] == 1
    assert eng.control({"op": "clear_faults"})["ok"]
    assert len(pipe(s, ("Get-SCVirtualMachine", [])).outputs) == 9
    assert eng.control({"op": "fault", "cmdlet": "X", "mode": "explode"})["ok"] is False


def test_server_down_and_unknown_op(eng):
    assert eng.server_down() is False
    eng.control({"op": "server_down", "value": True})
    assert eng.server_down() is True
    eng.control({"op": "server_down", "value": False})
    assert eng.server_down() is False
    assert eng.control({"op": "nope"})["ok"] is False


def test_state_summary(eng, s):
    pipe(s, ("Get-SCVMHost", [("ComputerName", "n3")]), ("Disable-SCVMHost", [("MoveWithinCluster", None)]))
    st = eng.control({"op": "state"})
    assert {h["name"]: h["maintenance"] for h in st["hosts"]}["n3.contoso.com"] is True
    web = [v for v in st["vms"] if v["name"] == "web01"][0]
    assert web["checkpoints"] == ["old"] and web["host"] != "n3.contoso.com"
    assert st["jobs"][-1]["status"] == "Completed" and json.dumps(st)


def test_save_and_load_state(tmp_path):
    path = str(tmp_path / "state.json")
    eng = SimEngine.from_scenario("demo", time_scale=FAST, state_file=path)
    s = eng.open_session("admin")
    pipe(s, ("Get-SCVirtualMachine", [("Name", "web01")]), ("New-SCVMCheckpoint", [("Name", "saved-cp")]))
    pipe(s, ("Get-SCVMHost", [("ComputerName", "hv-s01")]), ("Disable-SCVMHost", []))
    assert eng.control({"op": "save"})["ok"]
    again = SimEngine.from_scenario("demo", time_scale=FAST, state_file=path)
    assert "saved-cp" in vm_state(again, "web01")["checkpoints"]
    hosts = {h["name"]: h["maintenance"] for h in again.control({"op": "state"})["hosts"]}
    assert hosts["hv-s01.contoso.com"] is True
    assert len(again.control({"op": "state"})["jobs"]) == 2


# ---- scenarios ---------------------------------------------------------------------------
def test_demo_scenario_shape():
    eng = SimEngine.from_scenario("demo", time_scale=FAST)
    st = eng.control({"op": "state"})
    clusters = {}
    for h in st["hosts"]:
        clusters.setdefault(h["cluster"], []).append(h["name"])
    assert sorted(len(v) for k, v in clusters.items() if k) == [3, 4] and len(clusters[None]) == 1
    assert 50 <= len(st["vms"]) <= 70
    assert {v["cloud"] for v in st["vms"]} == {"Gold", "Silver", "Dev"}
    assert {v["status"] for v in st["vms"]} == {"Running", "PowerOff", "Saved"}
    assert {v["custom1"] for v in st["vms"]} == {"1", "2", "3", "4"}
    assert {v["ha"] for v in st["vms"]} == {True, False}
    assert len({v["owner"] for v in st["vms"]}) >= 3
    assert sum(1 for v in st["vms"] if v["checkpoints"]) >= 10


def test_scale_scenario_is_deterministic():
    a = SimEngine.from_scenario("scale", vms=500, time_scale=FAST).control({"op": "state"})
    b = SimEngine.from_scenario("scale", vms=500, time_scale=FAST).control({"op": "state"})
    assert len(a["vms"]) == 500 and [v["id"] for v in a["vms"]] == [v["id"] for v in b["vms"]]


def test_10k_vm_listing_returns_every_vm_once():
    # how fast this is: `manage.py bench wire --vms 10000` (no timed tests)
    eng = SimEngine.from_scenario("scale", vms=10000, time_scale=FAST)
    s = eng.open_session("admin")
    fields = ["ID", "Name", "Status", "HostName", "Cloud", "IsHighlyAvailable", "Memory", "Custom1", "Owner",
              "VMCheckpoints"]
    out = pipe(s, ("Get-SCVirtualMachine", [("All", None)]), ("Select-Object", [("Property", fields)]),
               ("ConvertTo-Json", [("Compress", None)]))
    rows = json.loads(out.outputs[0])
    assert len(rows) == 10000 and len({r["ID"] for r in rows}) == 10000
    assert set(rows[0]) == set(fields)


def test_vm_object_shape(s):
    vm = pipe(s, ("Get-SCVirtualMachine", [("Name", "web01")])).outputs[0]
    assert vm.type_names[0] == "Microsoft.SystemCenter.VirtualMachineManager.VM" and vm.to_string == "web01"
    assert isinstance(vm.get("Status"), SimEnum) and vm.get("Status").name == "Running"
    assert vm.get("Status").type_name == "Microsoft.VirtualManager.Utils.VMComputerSystemState"
    assert isinstance(vm.get("VMHost"), SimObject) and vm.get("HostName") == "n3.contoso.com"
    assert vm.get("IsHighlyAvailable") is True and vm.get("Memory") == 2048 and vm.get("Owner") == "CONTOSO\\alice"
    assert vm.get("Cloud").get("Name") == "Gold" and vm.get("Custom1") == ""
    assert [c.get("Name") for c in vm.get("VMCheckpoints")] == ["old"]
    assert vm.get("AddedTime").tzinfo is not None
