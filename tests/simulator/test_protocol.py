"""The simulator's protocol layer, driven by an unmodified pypsrp 0.9.1 client over loopback,
with NTLM and every message sealed (``SimulatorServer.wsman_kwargs``), as a customer's VMM is reached.

A tiny fake engine (below) implements the contract; the tests assert what the
client observes (and, where it matters, what the engine was handed).
"""
from __future__ import annotations

import datetime as dt
import threading
import time
import uuid

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, WSManFaultError
from pypsrp.complex_objects import PSInvocationState, RunspacePoolState
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.shell import SignalCode
from pypsrp.wsman import WSMan

from ops.simulator.contract import PSError, SimEnum, SimObject
from ops.simulator.server import control, start_simulator

VM_TYPE = "Microsoft.SystemCenter.VirtualMachineManager.VM"
STATUS_TYPE = "Microsoft.VirtualManager.Utils.VMComputerSystemState"


# --- a fake engine implementing the contract ---------------------------------------------------
class FakeSession:
    def __init__(self, engine: "FakeEngine", username: str):
        self.engine, self.username, self.closed = engine, username, False
        self.variables: dict = {}

    def execute(self, statements, out):
        self.engine.calls.append(statements)
        for statement in statements:
            data: list = []
            for cmd in statement.commands:
                data = self._run(cmd, data, out)
            for value in data:
                out.write_output(value)

    def _run(self, cmd, data, out):
        name = "Script" if cmd.is_script else cmd.name
        named = {k: v for k, v in cmd.parameters if k is not None}
        positional = [v for k, v in cmd.parameters if k is None]
        if name == "Echo":
            return data + positional + [named[k] for k in named]
        if name == "Count":
            return [len(data)]
        if name == "Script":
            return [f"script:{named.get('a')}"]
        if name == "Whoami":
            return [self.username]
        if name == "Set":
            self.variables.update(named)
            return data
        if name == "Get":
            return [self.variables.get(positional[0])]
        if name == "Len":
            return [len(positional[0])]
        if name == "Fail":
            raise PSError(named.get("Message", "It failed"), error_id="VMNotFound,Fake.GetVM",
                          category="ObjectNotFound", target="vm1", exception_type="Fake.CarmineException")
        if name == "Soft":
            out.write_error(PSError("soft failure", error_id="SoftError", category="InvalidOperation"))
            return data + ["after"]
        if name == "Progress":
            for pct in (0, 50, 100):
                out.write_progress("Creating checkpoint", f"{pct}% done", pct, activity_id=1)
            out.write_warning("chain is long")
            return data + ["done"]
        if name == "Slow":
            self.engine.slow_running.set()
            deadline = time.monotonic() + float(named.get("Seconds", 60))
            while time.monotonic() < deadline:
                if out.stopped():
                    self.engine.stopped_seen.set()
                    return data
                time.sleep(0.01)
            return data + ["slept"]
        if name == "Big":
            return data + [_vm(i) for i in range(int(named.get("Count", 10)))]
        if name == "Huge":
            return data + ["x" * int(named["Size"])]
        if name == "Vm":
            return data + [_vm(7)]
        if name == "Crash":
            raise ZeroDivisionError("boom")
        raise PSError(f"The term '{cmd.name}' is not recognized", error_id="CommandNotFoundException",
                      category="ObjectNotFound")

    def close(self):
        self.closed = True


def _vm(i: int) -> SimObject:
    return SimObject(
        type_names=[VM_TYPE, "Microsoft.SystemCenter.VirtualMachineManager.ClientObject", "System.Object"],
        properties={
            "Name": f"vm{i}", "ID": uuid.UUID(int=i), "Status": SimEnum(STATUS_TYPE, "Running", 0),
            "CPUCount": 2, "Memory": 2**33, "Ratio": 0.5, "IsHighlyAvailable": True, "Custom1": None,
            "CreationTime": dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone.utc),
            "Uptime": dt.timedelta(hours=1, seconds=3), "Tags": ["a", "b"], "Extra": {"k": 1},
        },
        to_string=f"vm{i}",
    )


class FakeEngine:
    def __init__(self):
        self.calls: list = []
        self.sessions: list[FakeSession] = []
        self.down = False
        self.stopped_seen = threading.Event()
        self.slow_running = threading.Event()

    def open_session(self, username):
        session = FakeSession(self, username)
        self.sessions.append(session)
        return session

    def server_down(self):
        return self.down

    def control(self, command):
        if command.get("op") == "down":
            self.down = bool(command["value"])
        return {"ok": True, "down": self.down, "echo": command}


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    return FakeEngine()


@pytest.fixture(scope="module")
def sim(engine):
    running = start_simulator(engine, password="s3cret")
    yield running
    running.stop()


def connect(sim, **kwargs) -> WSMan:
    return WSMan(**sim.wsman_kwargs(**kwargs))


@pytest.fixture
def pool(sim):
    with RunspacePool(connect(sim)) as rp:
        yield rp


def run(pool, *commands, **kwargs):
    ps = PowerShell(pool)
    for name, params in commands:
        ps.add_cmdlet(name)
        for key, value in params.items():
            ps.add_parameter(key, value)
    return ps, ps.invoke(**kwargs)


# --- pools ------------------------------------------------------------------------------------
def test_open_close_is_alive_and_session_per_pool(sim, engine):
    before = len(engine.sessions)
    rp = RunspacePool(connect(sim))
    rp.open()
    assert rp.is_alive()
    assert rp.protocol_version == "2.3"
    assert rp.connection.max_envelope_size == 512000  # upgraded after protocol >= 2.2
    assert len(engine.sessions) == before + 1 and engine.sessions[-1].username == "slipway"
    rp.close()
    assert engine.sessions[-1].closed
    assert sim.service.shell_count() == 0
    rp.state = RunspacePoolState.OPENED  # ask about the deleted shell anyway
    assert not rp.is_alive()


@pytest.mark.parametrize("auth", [{"auth": "ntlm"}, {"auth": "basic", "encryption": "never"}])
def test_wrong_password_is_authentication_error(sim, auth):
    with pytest.raises(AuthenticationError):
        RunspacePool(connect(sim, password="wrong", **auth)).open()


def test_basic_over_http_still_works_for_tests_and_benches(sim):
    with RunspacePool(connect(sim, auth="basic", encryption="never")) as rp:
        assert run(rp, ("Whoami", {}))[1] == ["slipway"]


def test_pool_session_state_and_several_pipelines(pool):
    run(pool, ("Set", {"Color": "blue"}))
    ps = PowerShell(pool).add_cmdlet("Get").add_argument("Color")
    assert ps.invoke() == ["blue"]
    for _ in range(5):
        assert run(pool, ("Whoami", {}))[1] == ["slipway"]


def test_runspace_availability_messages(pool):
    assert pool.get_available_runspaces() >= 1
    pool.max_runspaces = 3
    assert pool.max_runspaces == 3


# --- pipelines --------------------------------------------------------------------------------
def test_commands_statements_script_switches_and_arguments(pool, engine):
    ps = PowerShell(pool)
    ps.add_cmdlet("Echo").add_parameter("Name", "a").add_parameter("Force").add_argument(42)
    ps.add_cmdlet("Count")
    ps.add_statement()
    ps.add_script("param($a) \"script:$a\"").add_parameter("a", 5)
    ps.add_statement()
    ps.add_cmdlet("Echo").add_argument("x; Remove-Item C:\\ -Recurse")
    assert ps.invoke() == [3, "script:5", "x; Remove-Item C:\\ -Recurse"]
    statements = engine.calls[-1]
    assert [[c.name for c in s.commands] for s in statements] == [
        ["Echo", "Count"], ["param($a) \"script:$a\""], ["Echo"]]
    first = statements[0].commands[0]
    assert first.is_script is False and first.parameters == [("Name", "a"), ("Force", None), (None, 42)]
    assert statements[1].commands[0].is_script is True
    assert statements[1].commands[0].parameters == [("a", 5)]


def test_input_values_reach_the_engine_as_plain_python(pool, engine):
    # (pypsrp 0.9.1 cannot serialize a datetime at all: clients send ISO strings)
    gid = uuid.uuid4()
    values = {"S": "text\nline <&>", "I": 7, "B": True, "N": None, "L": [1, "two"], "D": {"k": "v", "n": 2},
              "G": gid, "F": 1.5}
    ps = PowerShell(pool).add_cmdlet("Echo")
    for key, value in values.items():
        ps.add_parameter(key, value)
    ps.invoke()
    got = dict(engine.calls[-1][0].commands[0].parameters)
    assert got["S"] == "text\nline <&>" and type(got["S"]) is str
    assert got["I"] == 7 and type(got["I"]) is int
    assert got["B"] is True and got["N"] is None
    assert got["L"] == [1, "two"] and type(got["L"]) is list
    assert got["D"] == {"k": "v", "n": 2} and type(got["D"]) is dict
    assert got["G"] == gid and type(got["G"]) is uuid.UUID
    assert got["F"] == 1.5 and type(got["F"]) is float


def test_output_objects_as_the_client_sees_them(pool):
    ps, out = run(pool, ("Vm", {}))
    assert not ps.had_errors
    vm = out[0]
    assert str(vm) == "vm7" and vm.types[0] == VM_TYPE
    props = vm.adapted_properties
    assert props["Name"] == "vm7" and props["ID"] == uuid.UUID(int=7)
    assert str(props["Status"]) == "Running" and props["Status"].property_sets == [0]
    assert props["Status"].types[:2] == [STATUS_TYPE, "System.Enum"]
    assert props["CPUCount"] == 2 and props["Memory"] == 2**33 and props["Ratio"] == 0.5
    assert props["IsHighlyAvailable"] is True and props["Custom1"] is None
    assert props["CreationTime"].startswith("2024-05-01T12:30:00")
    assert props["Uptime"] == "PT1H3S"
    assert props["Tags"] == ["a", "b"] and props["Extra"] == {"k": 1}


def test_strings_with_control_characters_and_markup_round_trip(pool):
    text = "tab\there _x000A_ <b>&amp;</b> \u00e9\U0001F600 end"
    assert run(pool, ("Echo", {"V": text}))[1] == [text]


def test_fragmented_create_pipeline_is_reassembled(pool):
    big = "y" * 1_200_000  # CREATE_PIPELINE larger than one envelope: Command + several Sends
    sends = []
    original = pool.shell.send
    pool.shell.send = lambda *a, **kw: sends.append(1) or original(*a, **kw)
    try:
        ps = PowerShell(pool).add_cmdlet("Len").add_argument(big)
        assert ps.invoke() == [1_200_000]
    finally:
        pool.shell.send = original
    assert len(sends) >= 2


def test_terminating_error_fails_the_pipeline(pool):
    ps, out = run(pool, ("Fail", {"Message": "VM vm1 was not found"}))
    assert ps.had_errors and ps.state == PSInvocationState.FAILED and out == []
    err = ps.streams.error[0]
    assert err.exception.adapted_properties["Message"] == "VM vm1 was not found"
    assert str(err) == "VM vm1 was not found"
    assert err.fq_error == "VMNotFound,Fake.GetVM"
    assert err.category == 13  # ObjectNotFound
    assert err.reason == "CarmineException"
    assert err.exception.types[0] == "Fake.CarmineException"


def test_engine_crash_is_a_failed_pipeline_not_a_dead_server(pool):
    ps, _ = run(pool, ("Crash", {}))
    assert ps.had_errors and "boom" in str(ps.streams.error[0])
    assert run(pool, ("Whoami", {}))[1] == ["slipway"]


def test_non_terminating_error_keeps_going(pool):
    ps, out = run(pool, ("Soft", {}))
    assert not ps.had_errors and ps.state == PSInvocationState.COMPLETED
    assert out == ["after"]
    assert str(ps.streams.error[0]) == "soft failure" and ps.streams.error[0].fq_error == "SoftError"


def test_progress_and_warnings(pool):
    ps, out = run(pool, ("Progress", {}))
    assert out == ["done"]
    assert [p.percent_complete for p in ps.streams.progress] == [0, 50, 100]
    assert ps.streams.progress[1].activity == "Creating checkpoint"
    assert ps.streams.progress[1].description == "50% done"
    assert [w.message for w in ps.streams.warning] == ["chain is long"]


def test_long_poll_times_out_and_client_retries(sim):
    with RunspacePool(connect(sim, operation_timeout=1)) as rp:
        requests_sent = []
        transport = rp.connection.transport
        original = transport.send
        transport.send = lambda *a, **kw: requests_sent.append(1) or original(*a, **kw)
        run(rp, ("Whoami", {}))
        quick = len(requests_sent)
        requests_sent.clear()
        ps, out = run(rp, ("Slow", {"Seconds": 2.5}))
        # the output arrives although each long poll timed out after 1 s: the client polled again (at least twice more)
        assert out == ["slept"] and len(requests_sent) >= quick + 2, (quick, len(requests_sent))


def test_large_output_is_split_to_fit_the_envelope(pool):
    sizes = []
    transport = pool.connection.transport
    original = transport.send
    transport.send = lambda *a, **kw: (lambda r: sizes.append(len(r)) or r)(original(*a, **kw))
    try:
        ps, out = run(pool, ("Big", {"Count": 5000}))
        assert len(out) == 5000 and str(out[-1]) == "vm4999"
        ps, out = run(pool, ("Huge", {"Size": 2 * 1024 * 1024}))
        assert len(out[0]) == 2 * 1024 * 1024
    finally:
        transport.send = original
    assert len(sizes) > 10 and max(sizes) <= pool.connection.max_envelope_size == 512000


def test_stop_and_terminate_signal_stop_a_running_pipeline(pool, engine):
    engine.stopped_seen.clear()
    engine.slow_running.clear()
    ps = PowerShell(pool).add_cmdlet("Slow").add_parameter("Seconds", 30)
    ps.begin_invoke()
    assert engine.slow_running.wait(60)
    ps.stop()  # Signal ctrl_c
    assert engine.stopped_seen.wait(60)
    engine.stopped_seen.clear()
    engine.slow_running.clear()
    ps = PowerShell(pool).add_cmdlet("Slow").add_parameter("Seconds", 30)
    ps.begin_invoke()
    assert engine.slow_running.wait(60)
    pool.shell.signal(SignalCode.TERMINATE, ps._command_id)
    assert engine.stopped_seen.wait(60)
    assert run(pool, ("Whoami", {}))[1] == ["slipway"]


def test_closing_the_pool_stops_its_pipelines_and_session(sim, engine):
    engine.stopped_seen.clear()
    engine.slow_running.clear()
    rp = RunspacePool(connect(sim))
    rp.open()
    session = engine.sessions[-1]
    PowerShell(rp).add_cmdlet("Slow").add_parameter("Seconds", 30).begin_invoke()
    assert engine.slow_running.wait(60)
    rp.close()  # Delete
    assert engine.stopped_seen.wait(60) and session.closed


def test_finished_commands_are_forgotten(sim, pool):
    host = sim.service.shell(uuid.UUID(pool.id))
    for _ in range(3):
        run(pool, ("Whoami", {}))
    assert host.commands == {} and list(host.queues) == [None]
    ps = PowerShell(pool).add_cmdlet("Whoami")
    ps.invoke()
    ps.close()  # Signal terminate on a finished (forgotten) command is fine


def test_concurrent_pools_and_pipelines(sim):
    errors: list = []

    def worker(n: int):
        try:
            with RunspacePool(connect(sim), max_runspaces=2) as rp:
                for i in range(10):
                    assert run(rp, ("Echo", {"V": f"{n}-{i}"}))[1] == [f"{n}-{i}"]
                a = PowerShell(rp).add_cmdlet("Slow").add_parameter("Seconds", 0.3)
                b = PowerShell(rp).add_cmdlet("Echo").add_argument(n)
                a.begin_invoke()
                b.begin_invoke()
                assert b.end_invoke() == [n] and a.end_invoke() == ["slept"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


# --- control, outages, HTTPS ------------------------------------------------------------------
def test_control_endpoint(sim):
    assert control(sim.url, sim.username, sim.password, {"op": "ping"}) == {
        "ok": True, "down": False, "echo": {"op": "ping"}}
    with pytest.raises(RuntimeError, match="401"):
        control(sim.control_url, sim.username, "nope", {})


def test_server_down_hangs_requests_until_cleared(sim, engine):
    with RunspacePool(connect(sim)) as rp:
        control(sim.url, sim.username, sim.password, {"op": "down", "value": True})
        try:
            with pytest.raises((requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)):
                RunspacePool(connect(sim, read_timeout=1, connection_timeout=1)).open()  # gives up: no answer
            with pytest.raises((requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError)):
                RunspacePool(connect(sim, read_timeout=1, connection_timeout=1)).open()
            assert control(sim.url, sim.username, sim.password, {"op": "status"})["down"] is True
        finally:
            control(sim.url, sim.username, sim.password, {"op": "down", "value": False})
        assert run(rp, ("Whoami", {}))[1] == ["slipway"]
        with RunspacePool(connect(sim, read_timeout=1)) as rp2:
            assert run(rp2, ("Whoami", {}))[1] == ["slipway"]


def test_unknown_shell_is_a_wsman_fault(sim):
    rp = RunspacePool(connect(sim))
    rp.open()
    rp.close()
    rp.state = RunspacePoolState.OPENED  # pretend it is still open: the server no longer knows the shell
    rp.shell.opened = True
    with pytest.raises(WSManFaultError) as info:
        PowerShell(rp).add_cmdlet("Whoami").invoke()
    assert info.value.code == 2150858843


def test_https_with_self_signed_certificate(engine):
    running = start_simulator(engine, https=True)
    try:
        assert running.url.startswith("https://")
        with RunspacePool(WSMan(**running.wsman_kwargs())) as rp:
            assert run(rp, ("Whoami", {}))[1] == ["slipway"]
        assert control(running.url, running.username, running.password, {"op": "x"})["ok"]
    finally:
        running.stop()


def _read_by_psrpcore(data: bytes):
    """What psrpcore's generic deserializer makes of a CREATE_PIPELINE, as contract statements."""
    from xml.etree import ElementTree

    from psrpcore._events import PSRPEvent
    from psrpcore.types import PSRPMessageType
    from psrpcore.types._serializer import deserialize

    from ops.simulator.psrp_parts import _statements

    event = PSRPEvent.create(PSRPMessageType.CreatePipeline, deserialize(ElementTree.fromstring(data), None),
                             uuid.uuid4(),
                             uuid.uuid4())
    return _statements(event.pipeline)


def test_fast_pipeline_reading_matches_psrpcore(pool, engine, monkeypatch):
    from ops.simulator import pipeline_xml

    seen = []
    original = pipeline_xml.statements
    monkeypatch.setattr(pipeline_xml, "statements", lambda data: seen.append((data, original(data))) or seen[-1][1])
    ps = PowerShell(pool)
    ps.add_cmdlet("Echo").add_parameter("S", "tab\there _x000A_ <b>&amp;</b> \u00e9\U0001F600").add_parameter("Force")
    ps.add_parameter("L", [1, "two", None, [True]]).add_parameter("D", {"k": "v", "n": 2}).add_argument(7)
    ps.add_parameter("G", uuid.uuid4()).add_parameter("F", 0.25).add_parameter("N", None)
    ps.add_cmdlet("Count").add_statement()
    ps.add_script("param($a) \"script:$a\"").add_parameter("a", 5)
    ps.invoke()
    PowerShell(pool).add_cmdlet("Echo").add_parameter("V", "only one statement").invoke()
    assert len(seen) == 2
    for data, fast in seen:
        assert fast is not None, "the fast path gave up on plain values"
        assert fast == _read_by_psrpcore(data)
    assert engine.calls[-2] == seen[0][1]


def test_values_the_fast_path_does_not_read_still_reach_the_engine(pool, engine, monkeypatch):
    from pypsrp.complex_objects import GenericComplexObject

    from ops.simulator import pipeline_xml

    seen = []
    original = pipeline_xml.statements
    monkeypatch.setattr(pipeline_xml, "statements", lambda data: seen.append(original(data)) or seen[-1])
    obj = GenericComplexObject()
    obj.types = ["Custom.Thing", "System.Object"]
    obj.adapted_properties = {"Name": "thing"}
    PowerShell(pool).add_cmdlet("Echo").add_parameter("O", obj).invoke()
    assert seen == [None]  # psrpcore read it
    value = dict(engine.calls[-1][0].commands[0].parameters)["O"]
    assert isinstance(value, SimObject) and value.properties["Name"] == "thing"
