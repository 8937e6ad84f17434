"""VMM host cmdlets for patching: Restart-SCVMHost, Get-SCStorageVolume -VMHost and
Get-SCVMHostNetworkAdapter -VMHost (the hardware a node is compared on after its reboot).

``Restart-SCVMHost`` starts a job ("Restart host", ``restart_host`` seconds) that ends when the
restart has been issued; the host then does not respond for its reboot time (patching.py):
``Get-SCVMHost`` shows it NotResponding and every job on it, its VMs or towards it fails with
error 2916. Wait for it by polling ``Get-SCVMHost`` until it responds again.
"""
from __future__ import annotations

import uuid

from .. import operations as ops
from .. import patching
from ..contract import SimEnum, SimObject
from ..errors import VmmFailure
from ..jobs import Step
from . import objects as O
from .base import P, cmdlet

NS = "Microsoft.SystemCenter.VirtualMachineManager"
T_VOLUME = f"{NS}.StorageVolume"
T_ADAPTER = f"{NS}.HostNetworkAdapter"
CONNECTION = {True: SimEnum("Microsoft.VirtualManager.Utils.ConnectionState", "Connected", 1),
              False: SimEnum("Microsoft.VirtualManager.Utils.ConnectionState", "Disconnected", 0)}


def restart_host(f, host, owner, cmdlet="Restart-SCVMHost"):
    ops.ensure_free(f, host, "host", host.name)

    def issue():
        patching.begin_reboot(f, host)
    steps = [Step(f.duration("restart_host"), issue, None, "Restart host")]
    job = ops._submit(f, "Restart host", cmdlet, owner, steps, [host.id], [host.name], (host.name, host.id, "Host"))
    host.most_recent_job = job.id
    return job


@cmdlet("Restart-SCVMHost", [P("VMHost", "host", mandatory=True, pipeline=True, position=0), P("Force", "switch"),
                             P("Confirm", "switch"), P("WhatIf", "switch")], vmm=True, job=True)
def restart_host_cmdlet(ctx, a):
    host = a["VMHost"]
    with ctx.f.lock:
        ctx.f.advance()
        try:
            job = restart_host(ctx.f, host, ctx.user, ctx.name)
        except VmmFailure as failure:
            raise failure.to_pserror(ctx.name)
    return ctx.job_result(job, lambda: O.host_obj(ctx.f, host))


def _hardware(ctx, host):
    f = ctx.f
    with f.lock:
        f.advance()
        if patching.host_is_down(f, host):
            raise VmmFailure(2916, "VMM is unable to complete the request. The connection to the agent "
                             f"{host.name} was lost.", category="ResourceUnavailable").to_pserror(ctx.name)
        return f.patching.host_state(host)


def _match(name: str, pattern: str | None) -> bool:
    return not pattern or name.lower() == pattern.lower()


@cmdlet("Get-SCStorageVolume", [P("Name", position=0), P("VMHost", "host", mandatory=True, pipeline=True)], vmm=True)
def get_volumes(ctx, a):
    host = a["VMHost"]
    ctx.fault_now([host.name])
    hp = _hardware(ctx, host)
    out = []
    for v in hp.volumes:
        if not _match(v["name"], a.get("Name")):
            continue
        vid = uuid.uuid5(host.id, "volume:" + v["name"])
        size = int(v["size_gb"] * patching.GB)
        props = {"Name": v["name"], "ID": vid, "StorageVolumeID": vid, "VolumeLabel": v["label"],
                 "MountPoints": [v["name"]], "Capacity": size, "FreeSpace": size // 2,
                 "IsClustered": v["clustered"], "InUse": v["clustered"], "IsSANMigrationPossible": False,
                 "VMHost": O.ref(ctx.f, "host", host), "HostDisk": None}
        out.append(SimObject([T_VOLUME, f"{NS}.ClientObject", "System.Object"], props, v["name"]))
    return out


@cmdlet("Get-SCVMHostNetworkAdapter", [P("Name", position=0), P("VMHost", "host", mandatory=True, pipeline=True)],
        vmm=True)
def get_adapters(ctx, a):
    host = a["VMHost"]
    ctx.fault_now([host.name])
    hp = _hardware(ctx, host)
    out = []
    for ad in hp.adapters:
        if not _match(ad["name"], a.get("Name")):
            continue
        aid = uuid.uuid5(host.id, "adapter:" + ad["name"])
        props = {"Name": ad["name"], "ID": aid, "ConnectionName": ad["name"], "MacAddress": ad["mac"],
                 "ConnectionState": CONNECTION[bool(ad["connected"])], "MaxBandwidth": 10000,
                 "VMHost": O.ref(ctx.f, "host", host), "UsedForManagement": ad is hp.adapters[0]}
        out.append(SimObject([T_ADAPTER, f"{NS}.ClientObject", "System.Object"], props, ad["name"]))
    return out
