"""Typed VMM calls for a node being patched: its facts (responding, maintenance, volumes and
network adapters as VMM shows them), ``Restart-SCVMHost`` and waiting for it to answer again.

A restarting host does not respond in VMM for the length of its reboot (``CommunicationState``
NotResponding); every job on it, on its VMs or towards it fails meanwhile (VMM error 2916), and
``Get-SCStorageVolume`` / ``Get-SCVMHostNetworkAdapter`` fail, so ``host_facts`` then returns no
volumes and no adapters. ``Restart-SCVMHost``'s job ends once the restart is issued: wait for the
host with ``wait_host_responding``. Compare ``HostFacts`` before and after (``differences``) for
the node consistency check: same volumes with the same sizes, same network adapters.
"""
from __future__ import annotations

import time

from . import errors
from .commands import Cmd, check_literal_name, cmd, enum_text, parse_json_output, select_json
from .session import FabricSession
from .types import AdapterInfo, HostFacts, JobInfo, VolumeInfo
from .types import VMInfo
from .vmm import COMMUNICATION_STATES, VM_FIELDS, _query, _run_job, _vm

HOST_FIELDS = ("Name", "CommunicationState", "MaintenanceHost")
VOLUME_FIELDS = ("Name", "VolumeLabel", "Capacity", "IsClustered")
ADAPTER_FIELDS = ("Name", "MacAddress", "ConnectionState")
CONNECTED = {0: "Disconnected", 1: "Connected"}


def _host_pipe(host_name: str) -> list[Cmd]:
    return [cmd("Get-SCVMHost", ComputerName=host_name)]


def host_facts(s: FabricSession, host_name: str, details: bool = True) -> HostFacts:
    """The host's state; with ``details`` (and when it responds) its volumes and network adapters too,
    a second round trip."""
    check_literal_name(s, host_name, "host", "Get-SCVMHost")
    rows = parse_json_output(s.run([_host_pipe(host_name) + select_json(*HOST_FIELDS)], cmdlet="Get-SCVMHost",
                                   target=host_name).output)
    if not rows:
        raise errors.NotFound(s.settings.name, f"no host is named {host_name}", cmdlet="Get-SCVMHost", target=host_name,
                              kind=s.settings.kind)
    comm = enum_text(rows[0].get("CommunicationState"), COMMUNICATION_STATES)
    facts = HostFacts(str(rows[0].get("Name") or host_name), comm == "Responding", comm,
                      bool(rows[0].get("MaintenanceHost")), [], [])
    if not facts.responding or not details:
        return facts
    result = s.run([_host_pipe(host_name) + [cmd("Get-SCStorageVolume")] + select_json(*VOLUME_FIELDS),
                    _host_pipe(host_name) + [cmd("Get-SCVMHostNetworkAdapter")] + select_json(*ADAPTER_FIELDS)],
                   cmdlet="Get-SCStorageVolume", target=host_name)
    volumes, adapters = (parse_json_output([text]) for text in _two(result.output))
    facts.volumes = sorted((VolumeInfo(str(v.get("Name")), str(v.get("VolumeLabel") or ""), int(v.get("Capacity") or 0),
                                       bool(v.get("IsClustered"))) for v in volumes), key=lambda v: v.name.lower())
    facts.adapters = sorted((AdapterInfo(str(a.get("Name")), str(a.get("MacAddress") or ""),
                                         enum_text(a.get("ConnectionState"), CONNECTED) == "Connected")
                             for a in adapters), key=lambda a: a.name.lower())
    return facts


def vms_on(s: FabricSession, host_name: str) -> list[VMInfo]:
    """The VMs VMM places on one host (``Get-SCVMHost | Get-SCVirtualMachine``): one host's, not the
    fabric's, over the wire. A host VMM does not know has none (``host_facts`` says it is unknown)."""
    check_literal_name(s, host_name, "host", "Get-SCVirtualMachine")
    return [_vm(r) for r in _query(s, _host_pipe(host_name) + [cmd("Get-SCVirtualMachine")], VM_FIELDS,
                                   cmdlet="Get-SCVirtualMachine", target=host_name)]


def _two(output: list) -> tuple:
    """Two ConvertTo-Json statements give two strings (a statement with no rows gives none)."""
    texts = [str(t) for t in output]
    if len(texts) == 2:
        return texts[0], texts[1]
    volumes = [t for t in texts if '"Capacity"' in t]
    adapters = [t for t in texts if '"MacAddress"' in t]
    return (volumes[0] if volumes else ""), (adapters[0] if adapters else "")


def restart_host(s: FabricSession, host_name: str) -> JobInfo:
    """``Restart-SCVMHost -Confirm:$false`` as a job; the job ends when the restart is issued."""
    check_literal_name(s, host_name, "host", "Restart-SCVMHost")
    return _run_job(s, _host_pipe(host_name) + [Cmd("Restart-SCVMHost", [("Confirm", False)])],
                    cmdlet="Restart-SCVMHost", target=host_name)


def wait_host_responding(s: FabricSession, host_name: str, timeout: float, poll: float = 5.0) -> HostFacts:
    """Poll until VMM says the host responds; ``FabricTimeout`` naming it when it does not in time."""
    deadline = time.monotonic() + timeout
    while True:
        facts = host_facts(s, host_name)
        if facts.responding:
            return facts
        if time.monotonic() > deadline:
            raise errors.FabricTimeout(s.settings.name, f"host {host_name} still {facts.communication_state} after "
                                       f"{timeout:.0f} s", cmdlet="Get-SCVMHost", target=host_name, kind=s.settings.kind)
        time.sleep(poll)


def differences(before: HostFacts, after: HostFacts) -> list[str]:
    """What changed on a node (the consistency check): sentences naming the volume or adapter."""
    out = []
    old_v = {v.name.lower(): v for v in before.volumes}
    new_v = {v.name.lower(): v for v in after.volumes}
    for key, v in old_v.items():
        if key not in new_v:
            out.append(f"volume {v.name} is missing")
        elif new_v[key].capacity_bytes != v.capacity_bytes:
            out.append(f"volume {v.name} is {_gb(new_v[key].capacity_bytes)}, was {_gb(v.capacity_bytes)}")
    out += [f"volume {v.name} is new" for k, v in new_v.items() if k not in old_v]
    old_a = {a.name.lower(): a for a in before.adapters}
    new_a = {a.name.lower(): a for a in after.adapters}
    out += [f"network adapter {a.name} is missing" for k, a in old_a.items() if k not in new_a]
    out += [f"network adapter {a.name} is new" for k, a in new_a.items() if k not in old_a]
    out += [f"network adapter {a.name} is disconnected" for k, a in new_a.items()
            if k in old_a and old_a[k].connected and not a.connected]
    return out


def _gb(n: int) -> str:
    return f"{n / 1024 ** 3:.0f} GB"
