"""The simulator as its own program: `manage.py simulator`, state kept across a restart."""
import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from ops.simproc import free_port, spawn


def _wsman(sim):
    return WSMan(sim.host, port=sim.port, ssl=False, auth="basic", username=sim.username, password=sim.password,
                 no_proxy=True, encryption="never", operation_timeout=10, read_timeout=15)


def _run(sim, *commands):
    with RunspacePool(_wsman(sim)) as pool:
        ps = PowerShell(pool)
        for name, params in commands:
            ps.add_cmdlet(name)
            for key, value in params.items():
                ps.add_parameter(key, value)
        out = ps.invoke()
        assert not ps.had_errors, [str(e) for e in ps.streams.error]
        return out


@pytest.mark.slow
def test_state_survives_a_restart(tmp_path):
    state = tmp_path / "sim.json"
    port = free_port()
    sim = spawn("demo", port=port, password="pw-1", time_scale=0.01, state_file=str(state))
    try:
        first = _run(sim, ("Get-SCVirtualMachine", {}), ("Select-Object", {"Property": ["Name"]}))[0]
        vm_name = first.extended_properties["Name"]
        _run(sim, ("Get-SCVirtualMachine", {"Name": vm_name}), ("Set-SCVirtualMachine", {"Custom7": "kept"}), ("Out-Null", {}))
    finally:
        sim.stop()  # SIGTERM: the simulator saves its state
    assert state.exists()
    sim = spawn("demo", port=port, password="pw-1", time_scale=0.01, state_file=str(state))
    try:
        out = _run(sim, ("Get-SCVirtualMachine", {"Name": vm_name}), ("Select-Object", {"Property": ["Custom7"]}),
                   ("ConvertTo-Json", {"Compress": None}))
        assert '"Custom7":"kept"' in out[0]
    finally:
        sim.stop()


@pytest.mark.slow
def test_wrong_password_is_401(tmp_path):
    from pypsrp.exceptions import AuthenticationError, WinRMTransportError

    sim = spawn("demo", password="right-pw", time_scale=0.01)
    try:
        sim.password = "wrong-pw"
        with pytest.raises((AuthenticationError, WinRMTransportError)):
            _run(sim, ("Get-SCCloud", {}))
    finally:
        sim.stop()
