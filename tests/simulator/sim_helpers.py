"""Helpers for the simulator engine tests: a fake Output, and small fabrics."""
from __future__ import annotations

import threading

from ops.simulator.contract import CommandSpec, PSError, Statement
from ops.simulator.engine import SimEngine

FAST = 0.0005   # time scale: a 6 s live migration takes 3 ms


class FakeOutput:
    def __init__(self):
        self.outputs: list = []
        self.errors: list = []
        self.progress: list = []
        self.warnings: list = []
        self._stopped = threading.Event()

    def write_output(self, value):
        self.outputs.append(value)

    def write_error(self, error):
        self.errors.append(error)

    def write_progress(self, activity, status, percent, activity_id=0):
        self.progress.append((activity, status, percent))

    def write_warning(self, message):
        self.warnings.append(message)

    def stop(self):
        self._stopped.set()

    def stopped(self) -> bool:
        return self._stopped.is_set()


def script(session, text, params=(), out=None):
    out = out or FakeOutput()
    session.execute([Statement([CommandSpec(text, is_script=True, parameters=list(params))])], out)
    return out


def pipe(session, *commands, out=None):
    """commands: (name, [(param, value), ...]) tuples piped into each other."""
    out = out or FakeOutput()
    session.execute([Statement([CommandSpec(n, parameters=list(p)) for n, p in commands])], out)
    return out


def raises(fn, *args, **kw) -> PSError:
    try:
        fn(*args, **kw)
    except PSError as e:
        return e
    raise AssertionError("expected a PSError")


def small_fabric(**overrides) -> dict:
    """Cluster C1 (n1, n2, n3) + standalone s1; VMs placed to make the drain rules visible."""
    data = {
        "vmm_server": "vmm01.contoso.com", "scom_server": "scom01.contoso.com", "domain": "contoso.com",
        "clouds": [{"name": "Gold"}, {"name": "Dev"}],
        "user_roles": [{"name": "Tenants", "members": ["CONTOSO\\alice"], "clouds": ["Gold"],
                        "permissions": {"Gold": ["CheckpointRestoreOnly"]}}],
        "clusters": [{"name": "C1", "hosts": [{"name": "n1.contoso.com", "memory_mb": 16384},
                                               {"name": "n2.contoso.com", "memory_mb": 16384},
                                               {"name": "n3.contoso.com", "memory_mb": 8192}]}],
        "hosts": [{"name": "s1.contoso.com", "memory_mb": 8192}],
        "vms": [
            {"name": "ha1", "host": "n1", "memory_mb": 4096, "highly_available": True, "status": "Running",
             "cloud": "Gold", "owner": "CONTOSO\\alice", "custom1": "1"},
            {"name": "ha2", "host": "n1", "memory_mb": 4096, "highly_available": True, "status": "Running",
             "cloud": "Gold", "custom1": "1"},
            {"name": "solo", "host": "n1", "memory_mb": 2048, "highly_available": False, "status": "Running",
             "cloud": "Gold", "custom1": "2"},
            {"name": "off1", "host": "n1", "memory_mb": 2048, "highly_available": True, "status": "PowerOff",
             "custom1": "2"},
            {"name": "saved1", "host": "n1", "memory_mb": 2048, "highly_available": True, "status": "Saved"},
            {"name": "big", "host": "n2", "memory_mb": 12288, "highly_available": True, "status": "Running"},
            {"name": "web01", "host": "n3", "memory_mb": 2048, "highly_available": True, "status": "Running",
             "cloud": "Gold", "owner": "CONTOSO\\alice",
             "checkpoints": [{"name": "old", "age_days": 30, "status": "PowerOff"}]},
            {"name": "st1", "host": "s1", "memory_mb": 4096, "highly_available": False, "status": "Running"},
            {"name": "st2", "host": "s1", "memory_mb": 4096, "highly_available": False, "status": "PowerOff"},
        ],
    }
    data.update(overrides)
    return data


def engine(data=None, time_scale=FAST) -> SimEngine:
    from ops.simulator import scenario
    fabric = scenario.from_data(data or small_fabric(), time_scale)
    return SimEngine(fabric)


def vm_state(eng, name):
    for v in eng.control({"op": "state"})["vms"]:
        if v["name"] == name:
            return v
    raise KeyError(name)


def host_state(eng, name):
    for h in eng.control({"op": "state"})["hosts"]:
        if h["name"].split(".")[0] == name:
            return h
    raise KeyError(name)
