"""Many operations in one round trip.

An engine step for 500 VMs must not cost 500 round trips: these functions put
many independent operations in one PowerShell invocation, one statement (or
two) each, and attribute what comes back to each operation. PowerShell stops
an invocation at a terminating error; the operations before it have their
results, the failing one gets the error, and the rest are sent again in the
next round trip. So one bad VM never hides the others' results.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import typing

from . import errors
from .commands import SWITCH, Cmd, cmd, parse_json_output, prop, select_json
from .session import FabricSession
from .types import CheckpointInfo, JobInfo, VMInfo
from .vmm import CHECKPOINT_FIELDS, STOP_METHODS, VM_FIELDS, _checkpoint, _vm, each_by_id, list_checkpoints, list_vms

CHUNK = 25  # at most this many job submissions per round trip
PARALLEL_CHUNKS = 3  # round trips under way at once (each on its own runspace pool)
LIST_ALL_ABOVE = 20  # for more IDs than this, one listing of everything is cheaper than one statement each


def list_all_above(fabric_vms: int | None) -> int:
    """How many IDs make one listing of everything cheaper than a statement per ID. A
    statement costs about as much as listing 40 VMs (measured against the simulator with
    500 VMs: 2.3 ms a statement, 0.06 ms a listed VM; a real VMM server is slower at both),
    so it depends on the size of the fabric."""
    if not fabric_vms:
        return LIST_ALL_ABOVE
    return max(3, fabric_vms // 40)


@dataclasses.dataclass
class JobRequest:
    """A long cmdlet to start with -RunAsynchronously: its pipeline, what to call it in
    errors, and how to recognise its result: the object VMM returns at once has
    ``match_field`` = ``match_value`` and carries the job as ``MostRecentTaskID``."""

    pipeline: list[Cmd]
    cmdlet: str
    target: str
    match_field: str
    match_value: str


def new_checkpoint_request(vm_id: str, name: str, description: str = "", vm_name: str = "") -> JobRequest:
    return JobRequest([cmd("Get-SCVirtualMachine", ID=vm_id), cmd("New-SCVMCheckpoint", Name=name, Description=description or "")],
                      "New-SCVMCheckpoint", vm_name or vm_id, "VMId", vm_id)


def stop_vm_request(vm_id: str, method: str = "shutdown", vm_name: str = "") -> JobRequest:
    if method not in STOP_METHODS:
        raise ValueError(f"unknown stop method {method!r}; expected one of {', '.join(STOP_METHODS)}")
    return JobRequest([cmd("Get-SCVirtualMachine", ID=vm_id), Cmd("Stop-SCVirtualMachine", [(STOP_METHODS[method], SWITCH)])],
                      "Stop-SCVirtualMachine", vm_name or vm_id, "ID", vm_id)


def start_vm_request(vm_id: str, vm_name: str = "") -> JobRequest:
    return JobRequest([cmd("Get-SCVirtualMachine", ID=vm_id), cmd("Start-SCVirtualMachine")], "Start-SCVirtualMachine",
                      vm_name or vm_id, "ID", vm_id)


def remove_checkpoint_request(checkpoint_id: str, label: str = "") -> JobRequest:
    return JobRequest([cmd("Get-SCVMCheckpoint", ID=checkpoint_id), cmd("Remove-SCVMCheckpoint")], "Remove-SCVMCheckpoint",
                      label or checkpoint_id, "ID", checkpoint_id)


def submit_jobs(s: FabricSession, requests: typing.Sequence[JobRequest]) -> list[JobInfo | errors.FabricError]:
    """Start every request's job; returns, in order, its JobInfo or the FabricError that refused it.

    One statement per request: ``<pipeline> -RunAsynchronously | Select-Object <match>,
    MostRecentTaskID`` (two small properties: cheaper for the client than JSON). Requests go in equal chunks (at most
    ``CHUNK``), all under way at once on the session's runspace pools when they fit.
    """
    results: list[JobInfo | errors.FabricError | None] = [None] * len(requests)
    # equal chunks, all under way at once when they fit: the jobs of one submission then start
    # together and end together, so the next wave is seen (and started) as one
    size = max(1, min(CHUNK, -(-len(requests) // PARALLEL_CHUNKS)))
    chunks = [list(range(i, min(i + size, len(requests)))) for i in range(0, len(requests), size)]
    if len(chunks) > 1:
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(PARALLEL_CHUNKS, len(chunks))) as pool:
            outcomes = list(pool.map(lambda c: _submit_chunk(s, requests, c, results), chunks))
    else:
        outcomes = [_submit_chunk(s, requests, chunks[0], results)] if chunks else []
    queue = [again for retry in outcomes for again in retry]
    while queue:  # the chunks an error stopped: what is left of them, one round trip at a time
        queue[:0] = _submit_chunk(s, requests, queue.pop(0), results)
    return results  # type: ignore[return-value]


def _submit_chunk(s: FabricSession, requests, chunk: list[int], results: list) -> list[list[int]]:
    """Submit one chunk; fill ``results`` for what it settled, return the chunks to send again."""
    statements = []
    for i in chunk:
        req = requests[i]
        last = req.pipeline[-1]
        pipeline = [*req.pipeline[:-1], Cmd(last.name, [*last.params, ("RunAsynchronously", SWITCH)], last.script)]
        statements.append(pipeline + [cmd("Select-Object", Property=[req.match_field, "MostRecentTaskID"])])
    label = requests[chunk[0]].cmdlet if len({requests[i].cmdlet for i in chunk}) == 1 else "jobs"
    result = s.run(statements, cmdlet=label, target=f"{len(chunk)} objects", strict=False, partial=True)
    # Select-Object gives small PSCustomObjects: cheaper for pypsrp than a JSON round trip per statement
    found = {}
    for n, i in enumerate(chunk):
        req = requests[i]
        row = next((o for o in result.output if str(prop(o, req.match_field) or "").lower() == req.match_value.lower()), None)
        job_id = prop(row, "MostRecentTaskID") if row is not None else None
        if job_id:
            found[n] = JobInfo(str(job_id), req.cmdlet, "Running", 0, target=req.target)
    last_ran = max(found, default=-1)
    for n, i in enumerate(chunk):
        req = requests[i]
        if n in found:
            results[i] = found[n]
        elif n < last_ran or result.failure is None:
            # a later statement ran, or nothing failed: this one found no object to act on
            results[i] = errors.NotFound(s.settings.name, f"{req.target} was not found on the server; nothing was started",
                                         cmdlet=req.cmdlet, target=req.target, kind=s.settings.kind)
    if result.failure is None:
        return []
    after = [i for n, i in enumerate(chunk) if n > last_ran]
    if len(after) == 1:  # the invocation stopped at this one
        req, failure = requests[after[0]], result.failure
        results[after[0]] = type(failure)(s.settings.name, failure.message, cmdlet=req.cmdlet, target=req.target,
                                          kind=s.settings.kind, error_id=failure.error_id, category=failure.category)
        return []
    # it stopped at one of these (the ones before it may have found nothing): alone, the first
    # tells which; the rest go again together
    return [[after[0]], after[1:]]


def get_vms(s: FabricSession, vm_ids: typing.Iterable[str], keep_all: bool = False,
            fabric_vms: int | None = None) -> dict[str, VMInfo]:
    """The VMs with these IDs (lower-case ID -> VMInfo), in one round trip; missing ones are left out.
    With ``keep_all``, when everything had to be listed anyway, every VM is returned.
    ``fabric_vms``: how many VMs the server has, if known (see ``list_all_above``)."""
    ids = [str(i).lower() for i in vm_ids]
    if not ids:
        return {}
    if len(ids) > list_all_above(fabric_vms):
        wanted = set(ids)
        return {vm.id.lower(): vm for vm in list_vms(s) if keep_all or vm.id.lower() in wanted}
    return each_by_id(s, "Get-SCVirtualMachine", ids, VM_FIELDS, _vm, "VMs")


def checkpoints_of(s: FabricSession, vm_ids: typing.Iterable[str], keep_all: bool = False,
                   all_vm_ids: typing.Iterable[str] = (), fabric_vms: int | None = None) -> dict[str, list[CheckpointInfo]]:
    """Checkpoints of these VMs (lower-case VM ID -> list), in one round trip. With ``keep_all``,
    when everything had to be listed anyway, every VM of ``all_vm_ids`` gets its list too."""
    ids = [str(i).lower() for i in vm_ids]
    out: dict[str, list[CheckpointInfo]] = {i: [] for i in ids}
    if not ids:
        return out
    if len(ids) > list_all_above(fabric_vms):
        if keep_all:
            out.update({str(i).lower(): [] for i in all_vm_ids})
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

