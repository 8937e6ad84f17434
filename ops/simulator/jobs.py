"""VMM jobs: a sequence of timed steps that advance lazily with the clock.

A job is built from ``Step`` objects (``duration`` in real seconds, already multiplied
by the time scale; ``begin`` runs when the step starts, ``apply`` when it ends). The
fabric calls ``JobTable.advance()`` under its lock before every read or write, which
applies every step whose end time has passed, in time order across jobs. So the state a
client sees is the state at that instant, whoever looks first.

Faults: a job with ``hang`` never applies a step (Status stays Running, ProgressValue
stays 0). A job with ``fail_message`` applies no step and fails at half its duration
with that message in ErrorInfo (a failed job changes nothing). A step's ``apply`` may
raise ``VmmFailure`` (e.g. the target host ran out of memory): the job fails then, and
steps applied before stay applied.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import time
import typing
import uuid

from .errors import VmmFailure

RUNNING, COMPLETED, FAILED, CANCELED, INFO = "Running", "Completed", "Failed", "Canceled", "SucceedWithInfo"


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


@dataclasses.dataclass
class Step:
    duration: float
    apply: typing.Callable[[], None] | None = None
    begin: typing.Callable[[], None] | None = None
    label: str = ""


@dataclasses.dataclass
class Job:
    id: uuid.UUID
    name: str
    cmdlet: str
    owner: str
    steps: list
    start_mono: float
    start_time: _dt.datetime
    result_name: str = ""
    result_id: uuid.UUID | None = None
    result_type: str = ""
    locks: list = dataclasses.field(default_factory=list)
    status: str = RUNNING
    progress: int = 0
    next_step: int = 0
    end_time: _dt.datetime | None = None
    error_code: int = 0
    problem: str = ""
    recommended: str = ""
    infos: list = dataclasses.field(default_factory=list)   # (code, message) -> SucceedWithInfo
    hang: bool = False
    fail_message: str = ""
    fail_code: int = 0
    on_fail: typing.Callable[[], None] | None = None
    on_end: typing.Callable[[], None] | None = None
    current_label: str = ""

    @property
    def total(self) -> float:
        return sum(s.duration for s in self.steps)

    @property
    def done(self) -> bool:
        return self.status != RUNNING

    def to_dict(self) -> dict:
        return {"id": str(self.id), "name": self.name, "cmdlet": self.cmdlet, "owner": self.owner,
                "start_time": self.start_time.isoformat(),
                "end_time": self.end_time.isoformat() if self.end_time else None,
                "status": self.status, "progress": self.progress, "result_name": self.result_name,
                "result_id": str(self.result_id) if self.result_id else None, "result_type": self.result_type,
                "error_code": self.error_code, "problem": self.problem, "recommended": self.recommended,
                "infos": [list(i) for i in self.infos]}

    @classmethod
    def from_dict(cls, d: dict) -> "Job":
        job = cls(id=uuid.UUID(d["id"]), name=d["name"], cmdlet=d.get("cmdlet", ""), owner=d.get("owner", ""),
                  steps=[], start_mono=0.0, start_time=_dt.datetime.fromisoformat(d["start_time"]),
                  result_name=d.get("result_name", ""),
                  result_id=uuid.UUID(d["result_id"]) if d.get("result_id") else None,
                  result_type=d.get("result_type", ""), status=d["status"], progress=d.get("progress", 0),
                  error_code=d.get("error_code", 0), problem=d.get("problem", ""),
                  recommended=d.get("recommended", ""), infos=[tuple(i) for i in d.get("infos", [])])
        job.end_time = _dt.datetime.fromisoformat(d["end_time"]) if d.get("end_time") else None
        if job.status == RUNNING:  # the service restarted under it
            job.status, job.error_code = FAILED, 2912
            job.problem = "The job was interrupted because the VMM service restarted."
            job.end_time = job.end_time or utcnow()
        return job


class JobTable:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self.jobs: dict[uuid.UUID, Job] = {}
        self.order: list[uuid.UUID] = []
        self.locks: dict[uuid.UUID, uuid.UUID] = {}   # entity id -> job id
        self._live: dict[uuid.UUID, Job] = {}         # the running ones, oldest first (history grows; this does not)

    def add(self, job: Job) -> Job:
        self.jobs[job.id] = job
        self.order.append(job.id)
        if not job.done:
            self._live[job.id] = job
        for ent in job.locks:
            self.locks[ent] = job.id
        if job.steps and job.steps[0].begin and not job.hang and not job.fail_message:
            job.steps[0].begin()
        self._run_due(job, self.clock())
        return job

    def new(self, name: str, cmdlet: str, owner: str, steps: list, **kw) -> Job:
        return Job(id=uuid.uuid4(), name=name, cmdlet=cmdlet, owner=owner, steps=steps,
                   start_mono=self.clock(), start_time=utcnow(), **kw)

    def locked_by(self, entity_id) -> Job | None:
        jid = self.locks.get(entity_id)
        job = self.jobs.get(jid) if jid else None
        return job if job is not None and not job.done else None

    def running(self) -> list[Job]:
        return list(self._live.values())

    def advance(self) -> None:
        now = self.clock()
        pending = [j for j in self.running()]
        if not pending:
            return
        # apply due steps in time order across jobs
        while True:
            due = [(t, j) for t, j in ((self._next_due(j), j) for j in pending if not j.done) if t is not None and t <= now]
            if not due:
                break
            due.sort(key=lambda e: e[0])
            self._step(due[0][1], now)
        for job in pending:
            if not job.done and not job.hang:
                total = job.total
                frac = (now - job.start_mono) / total if total > 0 else 1.0
                job.progress = max(job.progress, min(99, int(frac * 100)))

    def _next_due(self, job: Job):
        if job.done or job.hang:
            return None
        if job.fail_message:
            return job.start_mono + job.total / 2
        t = job.start_mono
        for s in job.steps[:job.next_step + 1]:
            t += s.duration
        return t

    def _run_due(self, job: Job, now: float):
        while not job.done:
            t = self._next_due(job)
            if t is None or t > now:
                break
            self._step(job, now)

    def _step(self, job: Job, now: float):
        if job.fail_message:
            self._finish(job, job.start_mono + job.total / 2, FAILED, job.fail_code or 2912, job.fail_message)
            return
        end_mono = job.start_mono + sum(s.duration for s in job.steps[:job.next_step + 1])
        step = job.steps[job.next_step] if job.steps else None
        try:
            if step is not None and step.apply:
                step.apply()
        except VmmFailure as f:
            self._finish(job, end_mono, FAILED, f.code, f.message, f.recommended)
            return
        job.next_step += 1
        if job.next_step >= len(job.steps):
            if job.infos:
                code, msg = job.infos[0]
                self._finish(job, end_mono, INFO, code, " ".join(m for _, m in job.infos))
            else:
                self._finish(job, end_mono, COMPLETED, 0, "")
            return
        nxt = job.steps[job.next_step]
        job.current_label = nxt.label
        if nxt.begin:
            nxt.begin()

    def cancel_hung(self) -> int:
        """End every hung job as Canceled (its changes undone, its locks released)."""
        hung = [j for j in self.running() if j.hang]
        for job in hung:
            self._finish(job, self.clock(), CANCELED, 0, "The job was canceled.")
        return len(hung)

    def _finish(self, job: Job, end_mono: float, status: str, code: int, problem: str, recommended: str = ""):
        self._live.pop(job.id, None)
        job.status = status
        job.error_code = code
        job.problem = problem
        if status in (FAILED, CANCELED):
            job.recommended = recommended or "Resolve the issue and then try the operation again."
            if job.on_fail:
                job.on_fail()
        else:
            job.progress = 100
        job.end_time = job.start_time + _dt.timedelta(seconds=max(0.0, end_mono - job.start_mono))
        for ent in job.locks:
            if self.locks.get(ent) == job.id:
                del self.locks[ent]
        if job.on_end:
            job.on_end()
