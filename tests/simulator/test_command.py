"""The simulator as its own program: `manage.py simulator`, state kept across a restart."""
import pytest
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from ops.simproc import free_port, spawn


def _wsman(sim, **kwargs):
    """As a customer's Slipway: NTLM with every message encrypted over HTTP."""
    options = {"auth": "ntlm", "encryption": "always", **kwargs}
    return WSMan(sim.host, port=sim.port, ssl=False, username=sim.username, password=sim.password,
                 no_proxy=True, operation_timeout=10, read_timeout=15, **options)


def _run(sim, *commands, **kwargs):
    with RunspacePool(_wsman(sim, **kwargs)) as pool:
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


@pytest.mark.slow
def test_the_password_is_not_on_the_command_line_and_may_start_with_a_dash():
    sim = spawn("demo", password="-starts-with-a-dash", time_scale=0.01)
    try:
        with open(f"/proc/{sim.proc.pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert b"-starts-with-a-dash" not in argv and b"--password" not in argv
        assert _run(sim, ("Get-SCCloud", {}), ("Select-Object", {"Property": ["Name"]}))
    finally:
        sim.stop()


@pytest.mark.slow
def test_a_person_runs_it_with_username_and_password_and_pypsrp_ntlm_works_like_basic(tmp_path):
    """Issue 8's acceptance: `manage.py simulator --port P --scenario demo --username U --password PW`,
    an unmodified pypsrp with NTLM and encryption="always" gets what Basic gets."""
    import subprocess
    import sys

    from ops.simproc import BASE_DIR, SimProcess, wait_for_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(BASE_DIR / "manage.py"), "simulator", "--port", str(port),
                             "--scenario", "demo", "--username", "operator1", "--password", "Typed-pw-1",
                             "--time-scale", "0.01"], cwd=BASE_DIR, stdout=subprocess.DEVNULL)
    sim = SimProcess(proc, "127.0.0.1", port, "operator1", "Typed-pw-1")
    try:
        wait_for_port("127.0.0.1", port, 60, proc)
        listing = (("Get-SCVirtualMachine", {"All": True}), ("Select-Object", {"Property": ["Name", "Status"]}),
                   ("ConvertTo-Json", {"Compress": True}))
        ntlm = _run(sim, *listing)
        basic = _run(sim, *listing, auth="basic", encryption="never")
        assert ntlm == basic and '"Name"' in ntlm[0]
    finally:
        sim.stop()


@pytest.mark.slow
def test_an_https_listener_beside_http_writes_its_ca_for_clients(tmp_path):
    sim = spawn("demo", time_scale=0.01, https_port=free_port(), tls_dir=str(tmp_path / "tls"))
    try:
        https = WSMan(sim.host, port=sim.https_port, ssl=True, auth="basic", username=sim.username,
                      password=sim.password, cert_validation=sim.ca_file, no_proxy=True, operation_timeout=10,
                      read_timeout=15)
        with RunspacePool(https) as pool:
            ps = PowerShell(pool)
            ps.add_cmdlet("Get-SCCloud")
            assert len(ps.invoke()) == 3 and not ps.had_errors
        assert (tmp_path / "tls" / "listener-cert.pem").exists()
        assert not [p for p in (tmp_path / "tls").iterdir() if b"PRIVATE KEY" in p.read_bytes()]
    finally:
        sim.stop()
