"""Many operations in one round trip.

An engine step for 500 VMs must not cost 500 round trips: these functions put
many independent operations in one PowerShell invocation, one statement (or
two) each, and attribute what comes back to each operation. PowerShell stops
an invocation at a terminating error; the operations before it have their
results, the failing one gets the error, and the rest are sent again in the
next round trip. So one bad VM never hides the others' results.
"""
from __future__ import annotations

import dataclasses
import typing

from . import errors
from .commands import SWITCH, Cmd, cmd, parse_json_output, select_json
from .session import FabricSession
from .types import CheckpointInfo, JobInfo, VMInfo
from .vmm import (CHECKPOINT_FIELDS, JOB_FIELDS, STOP_METHODS, VM_FIELDS, _checkpoint, _job, _job_variable, _vm,
                  list_checkpoints, list_vms)

CHUNK = 60  # operations per round trip (two statements each)
LIST_ALL_ABOVE = 20  # for more IDs than this, one listing of everything is cheaper than one statement each


@dataclasses.dataclass
class JobRequest:
    """A long cmdlet to start with -RunAsynchronously: its pipeline, and what to call it in errors."""

    pipeline: list[Cmd]
    cmdlet: str
    target: str


def new_checkpoint_request(vm_id: str, name: str, description: str = "", vm_name: str = "") -> JobRequest:
    return JobRequest([cmd("Get-SCVirtualMachine", ID=vm_id), cmd("New-SCVMCheckpoint", Name=name, Description=description or "")],
                      "New-SCVMCheckpoint", vm_name or vm_id)


def stop_vm_request(vm_id: str, method: str = "shutdown", vm_name: str = "") -> JobRequest:
    if method not in STOP_METHODS:
        raise ValueError(f"unknown stop method {method!r}; expected one of {', '.join(STOP_METHODS)}")
    return JobRequest([cmd("Get-SCVirtualMachine", ID=vm_id), Cmd("Stop-SCVirtualMachine", [(STOP_METHODS[method], SWITCH)])],
                      "Stop-SCVirtualMachine", vm_name or vm_id)


def start_vm_request(vm_id: str, vm_name: str = "") -> JobRequest:
    return JobRequest([cmd("Get-SCVirtualMachine", ID=vm_id), cmd("Start-SCVirtualMachine")], "Start-SCVirtualMachine",
                      vm_name or vm_id)


def remove_checkpoint_request(checkpoint_id: str, label: str = "") -> JobRequest:
    return JobRequest([cmd("Get-SCVMCheckpoint", ID=checkpoint_id), cmd("Remove-SCVMCheckpoint")], "Remove-SCVMCheckpoint",
                      label or checkpoint_id)


def submit_jobs(s: FabricSession, requests: typing.Sequence[JobRequest]) -> list[JobInfo | errors.FabricError]:
    """Start every request's job; returns, in order, its JobInfo or the FabricError that refused it."""
    results: list[JobInfo | errors.FabricError | None] = [None] * len(requests)
    todo = list(range(len(requests)))
    while todo:
        chunk, todo = todo[:CHUNK], todo[CHUNK:]
        variables = {i: _job_variable() for i in chunk}
        statements = []
        for i in chunk:
            req = requests[i]
            last = req.pipeline[-1]
            pipeline = [*req.pipeline[:-1], Cmd(last.name, [*last.params, ("RunAsynchronously", SWITCH),
                                                             ("JobVariable", variables[i])], last.script)]
            statements.append(pipeline + [cmd("Out-Null")])
            statements.append([cmd("Get-Variable", Name=variables[i], ValueOnly=True), *select_json(*JOB_FIELDS)])
        label = requests[chunk[0]].cmdlet if len({requests[i].cmdlet for i in chunk}) == 1 else "jobs"
        result = s.run(statements, cmdlet=label, target=f"{len(chunk)} objects", strict=False, partial=True)
        missing = {}
        for record in result.errors:  # "Cannot find a variable with the name 'SlipwayJob_…'": nothing was started
            text = s._command_error(record, label, "").message
            for i in chunk:
                if variables[i] in text:
                    missing[i] = text
        outputs = iter(result.output)
        for n, i in enumerate(chunk):
            req = requests[i]
            if i in missing:
                results[i] = errors.NotFound(s.settings.name, f"{req.target} was not found on the server; nothing was started",
                                             cmdlet=req.cmdlet, target=req.target, kind=s.settings.kind)
                continue
            text = next(outputs, None)
            if text is not None:
                job = _job(parse_json_output([text])[0])
                job.target = req.target
                results[i] = job
                continue
            todo = chunk[n + 1:] + todo
            if result.failure is not None:
                failure = result.failure
                results[i] = type(failure)(s.settings.name, failure.message, cmdlet=req.cmdlet, target=req.target,
                                           kind=s.settings.kind, error_id=failure.error_id, category=failure.category)
            else:
                results[i] = errors.FabricCommandError(s.settings.name, "the server returned no job", cmdlet=req.cmdlet,
                                                       target=req.target, kind=s.settings.kind)
            break
    return results  # type: ignore[return-value]


def get_vms(s: FabricSession, vm_ids: typing.Iterable[str]) -> dict[str, VMInfo]:
    """The VMs with these IDs (lower-case ID -> VMInfo), in one round trip; missing ones are left out."""
    ids = [str(i).lower() for i in vm_ids]
    if not ids:
        return {}
    if len(ids) > LIST_ALL_ABOVE:
        wanted = set(ids)
        return {vm.id.lower(): vm for vm in list_vms(s) if vm.id.lower() in wanted}
    statements = [[cmd("Get-SCVirtualMachine", ID=i), *select_json(*VM_FIELDS)] for i in ids]
    result = s.run(statements, cmdlet="Get-SCVirtualMachine", target=f"{len(ids)} VMs", strict=False)
    found = {}
    for text in result.output:
        for row in parse_json_output([text]):
            vm = _vm(row)
            found[vm.id.lower()] = vm
    return found


def checkpoints_of(s: FabricSession, vm_ids: typing.Iterable[str]) -> dict[str, list[CheckpointInfo]]:
    """Checkpoints of these VMs (lower-case VM ID -> list), in one round trip."""
    ids = [str(i).lower() for i in vm_ids]
    out: dict[str, list[CheckpointInfo]] = {i: [] for i in ids}
    if not ids:
        return out
    if len(ids) > LIST_ALL_ABOVE:
        rows = list_checkpoints(s)
    else:
        statements = [[cmd("Get-SCVirtualMachine", ID=i), cmd("Get-SCVMCheckpoint"), *select_json(*CHECKPOINT_FIELDS)]
                      for i in ids]
        result = s.run(statements, cmdlet="Get-SCVMCheckpoint", target=f"{len(ids)} VMs", strict=False)
        rows = [_checkpoint(r) for text in result.output for r in parse_json_output([text])]
    for cp in rows:
        if cp.vm_id.lower() in out:
            out[cp.vm_id.lower()].append(cp)
    return out

