"""The Runbook API the engine drives.

A runbook
- ``prepare(raw)`` turns the operator's parameters (strings from a form or the
  CLI) into clean JSON parameters, or raises ``ValidationError`` whose message
  names the parameter; it may ask the fabric (does the batch exist? the cloud?);
- declares ``phases``: junction-delimited stages run in order. A phase's steps
  are planned (``plan``) when the phase begins, from what earlier phases
  learned (``run.context``). The next phase begins only when every step of the
  current one is final. A phase marked ``always`` also runs after a failure,
  an abort or a cancel: that is the compensation (start the VMs again, end
  maintenance mode);
- implements one ``do_<action>`` per step action. An action reads the fabric's
  real state before it acts, so doing it again after a crash does no harm, and
  returns an ``Outcome``. Actions run in worker threads: they must not touch the
  database; what they learn goes back in ``Outcome.context``;
- lists ``job_actions``: actions that start a VMM job and so take a slot of the
  connection's ``max_concurrent_jobs``.
"""
from __future__ import annotations

import dataclasses
import re
import typing

from django.core.exceptions import ValidationError

from ..fabric import configmgr as cm, errors, scom, vmm
from ..fabric.session import session_for
from ..models import ServerConnection


@dataclasses.dataclass
class Phase:
    """A stage of a run. ``block`` groups the phases a runbook repeats per target (a patch run's
    node): a failure inside a block runs that block's ``always`` phases (its compensation), then
    ``Runbook.after_block_failure`` says whether the run goes on with the next block."""
    name: str
    title: str
    always: bool = False
    block: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "always": self.always, "block": self.block}

    @classmethod
    def from_dict(cls, d: dict) -> "Phase":
        return cls(d["name"], d["title"], bool(d.get("always")), d.get("block") or "")


@dataclasses.dataclass
class StepSpec:
    action: str
    target: str = ""
    target_id: str = ""
    data: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Plan:
    steps: list[StepSpec]
    notes: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (level, message) events


@dataclasses.dataclass
class Outcome:
    kind: str  # done | job | failed | skipped | later
    message: str = ""
    level: str = "success"
    result: dict = dataclasses.field(default_factory=dict)
    context: dict = dataclasses.field(default_factory=dict)  # merged into run.context
    job: typing.Any = None
    delay: float = 0.0
    request: typing.Any = None  # a bulk.JobRequest to submit (kind "submit"); a wait's deadline
    failure: str = ""  # a wait's text for when its deadline passes (ops/engine/waits.py)
    failure_context: dict = dataclasses.field(default_factory=dict)  # merged into run.context then

    @classmethod
    def done(cls, message, result=None, level="success", context=None):
        return cls("done", message, level, result or {}, context or {})

    @classmethod
    def started(cls, job, message):
        return cls("job", message, "info", {"job_id": job.id}, job=job)

    @classmethod
    def submit(cls, request, message):
        """Start this VMM job: the engine submits the jobs of all steps starting
        together in one round trip (``ops.fabric.bulk.submit_jobs``)."""
        return cls("submit", message, "info", request=request)

    @classmethod
    def failed(cls, error, result=None, context=None):
        return cls("failed", str(error), "error", result or {}, context or {})

    @classmethod
    def wait(cls, message, poll=5.0, deadline=None, result=None, context=None, failure="", failure_context=None):
        """The condition this step waits for does not hold yet: look again after ``poll`` seconds.
        ``message`` says what it waits for, as it is now. ``deadline`` (seconds after the step first
        waited) fails the step once passed, with ``failure`` (what did not happen; by default the
        message and the time waited) and ``failure_context`` merged into the run's context.
        A waiting step holds no worker (ops/engine/waits.py)."""
        return cls("wait", message, "info", result or {}, context or {}, delay=float(poll), request=deadline,
                   failure=failure, failure_context=failure_context or {})

    @classmethod
    def skipped(cls, message, level="warning"):
        return cls("skipped", message, level)

    @classmethod
    def later(cls, message, delay=2.0):
        """The target is busy (another job holds it): try this step again later."""
        return cls("later", message, "info", delay=delay)


@dataclasses.dataclass
class Prepared:
    params: dict
    connection: typing.Any  # the VMM ServerConnection
    title: str
    target_key: str
    claims: list[str]  # ids of the VMs the run works on; two active runs never share one
    holds: list[str] = dataclasses.field(default_factory=list)  # "cluster:CLU-B", "host:hv-b01...": never shared either


@dataclasses.dataclass
class StepContext:
    """What an action sees: read-only run data and fabric sessions."""

    run_id: int
    params: dict
    context: dict
    step_id: int
    action: str
    target: str
    target_id: str
    data: dict
    connection: typing.Any
    scom_connection: typing.Any = None
    created_at: typing.Any = None
    cache: dict = dataclasses.field(default_factory=dict)  # what ``Runbook.prefetch`` read for this increment
    run_uid: str = ""  # unique across installations and databases: the marker on what the run makes
    scom_name: str = ""  # the SCOM connection the run was started with (``params['scom']``)
    connections: dict = dataclasses.field(default_factory=dict)  # kind -> ServerConnection (None: gone)
    connection_names: dict = dataclasses.field(default_factory=dict)  # kind -> the name the run was started with

    @property
    def own(self) -> dict:
        """The runbook's own data in the run (``run.context['runbook']``), read-only here."""
        return self.context.get("runbook") or {}

    def session(self, kind: str):
        """The session of the run's connection of ``kind`` ("vmm", "scom", "configmgr"); a connection
        deleted or disabled since the run started is a typed error naming it, never an AttributeError."""
        if kind == "vmm":
            return self.vmm
        conn = self.connections.get(kind)
        name = self.connection_names.get(kind) or "?"
        if conn is None:
            label = {"scom": "SCOM", "configmgr": "ConfigMgr"}.get(kind, kind)
            raise errors.ConnectionUnusable(name, f"no {label} connection of that name exists any more", kind=kind)
        if not conn.enabled:
            raise errors.ConnectionUnusable(conn.name, "the connection is disabled; enable it, then retry the run",
                                            kind=kind)
        return session_for(conn)

    @property
    def vmm(self):
        if self.connection is None:
            raise errors.ConnectionUnusable(self.params.get("connection") or "?",
                                            "no VMM connection of that name exists any more")
        return session_for(self.connection)

    @property
    def scom(self):
        """The SCOM session (``session('scom')``)."""
        return self.session("scom")


def own(run) -> dict:
    """A runbook's own data in its run: ``run.context['runbook']`` (the engine keeps its own beside it)."""
    return run.context.get("runbook") or {}


class Runbook:
    kind = ""
    title = ""
    description = ""
    phases: list[Phase] = []
    job_actions: set[str] = set()
    param_names: tuple[str, ...] = ()
    default_on_error = "compensate"
    done_messages: dict[str, str] = {}  # action -> message when its VMM job completed ({target}, {job})
    # the other connections the steps use: kind -> the parameter that names it (the engine names none)
    connection_params: dict[str, str] = {"scom": "scom"}

    # -- the plan ------------------------------------------------------------------
    def make_phases(self, run) -> list[Phase]:
        """The run's phases, made once when it starts and stored with it (``registry.phases_of``): a runbook
        may repeat a block of phases per target, in an order chosen from its parameters."""
        return list(self.phases)

    def after_phase(self, run, phase: Phase, steps: list) -> None:
        """Called at the junction after ``phase`` (every step final), before the next begins: what the
        phase proved about the fabric may be written to the inventory here (no fabric calls)."""

    def after_block_failure(self, run, block: str, failed_blocks: list[str]) -> str:
        """A block failed (its compensation has been planned): "continue" with the next block, or "stop"."""
        return "stop"

    # -- parameters ----------------------------------------------------------------
    def prepare(self, raw: dict, check_fabric: bool = True) -> Prepared:
        raise NotImplementedError

    def check_names(self, raw: dict) -> None:
        unknown = sorted(set(raw) - set(self.param_names))
        if unknown:
            raise ValidationError(
                f"unknown parameter {unknown[0]!r} for {self.kind}; expected {', '.join(self.param_names)}",
                code="unknown")

    # -- planning ------------------------------------------------------------------
    def plan(self, phase: Phase, run) -> Plan:
        raise NotImplementedError

    def expected_steps(self, run) -> int | None:
        """How many steps the whole run will have, for the progress bar (None: unknown yet)."""
        return None

    def on_error(self, run) -> str:
        """After a step failed: 'wait' for the operator, or 'compensate' (finish the
        phase, then run the ``always`` phases and fail)."""
        return run.params.get("on_error") or self.default_on_error

    # -- actions -------------------------------------------------------------------
    def act(self, ctx: StepContext) -> Outcome:
        return getattr(self, "do_" + ctx.action.replace("-", "_"))(ctx)

    def prefetch(self, ctxs: list[StepContext]) -> dict:
        """Read in one go what the actions about to run need (e.g. every target VM's
        state), so N steps cost a few round trips, not N. Shared via ``ctx.cache``."""
        return {}

    def batch_action(self, action: str):
        """``batch_<action>(ctxs) -> list[Outcome]`` when the runbook can do many steps of
        an action (without a VMM job) in one round trip, else None."""
        return getattr(self, "batch_" + action.replace("-", "_"), None)

    def check_jobs(self, connection, ctxs: dict) -> dict:
        """The state of in-flight jobs (job ID -> ctx of its step): job ID -> JobInfo, or an
        Outcome when the fabric's state already shows what the ended job did.

        One ``Get-SCJob -Running`` says which jobs still run (``running_jobs``); the ones
        that ended are judged by ``judge_ended``."""
        ids = list(ctxs)
        running = self.running_jobs(connection, ids) or {}
        out = {j: running[j] for j in ids if j in running}
        out.update(self.judge_ended(connection, {j: ctxs[j] for j in ids if j not in out}))
        return out

    def running_jobs(self, connection, job_ids: list[str]) -> dict | None:
        """Job ID -> JobInfo of the ones still running, from one ``Get-SCJob -Running``;
        None when there are too few jobs for that to be worth it (read them one by one)."""
        if len(job_ids) <= 3:
            return None
        running = vmm.running_jobs(session_for(connection), job_ids)
        return {j: running[j.lower()] for j in job_ids if j.lower() in running}

    def judge_ended(self, connection, ctxs: dict) -> dict:
        """Jobs that left ``Get-SCJob -Running``: ``verify_ended`` may judge them from the
        fabric's state in a few round trips; the rest are read one by one (status, error)."""
        if not ctxs:
            return {}
        verdicts = self.verify_ended(ctxs) if len(ctxs) > 3 else {}
        rest = [j for j in ctxs if j not in verdicts]
        found = vmm.jobs_by_id(session_for(connection), rest)
        return {**verdicts, **{j: found[j.lower()] for j in rest if j.lower() in found}}

    def verify_ended(self, ctxs: dict) -> dict:
        """Job ID -> Outcome for ended jobs whose result the fabric's state shows (success
        only; a job that did not do its work is read in full for its error)."""
        return {}

    def job_finished(self, ctx: StepContext, job) -> Outcome:
        if job.succeeded:
            template = self.done_messages.get(ctx.action, "{job} on {target} completed")
            return Outcome.done(template.format(job=job.name or ctx.action, target=ctx.target), {"job_id": job.id})
        cmdlet = ctx.data.get("cmdlet") or job.name or ctx.action
        error = job.error or f"job {job.status.lower()}"
        return Outcome.failed(f"VMM server {ctx.connection.name}: {cmdlet} on {ctx.target} failed: {error}", {"job_id": job.id})

    def summarize(self, run, steps: list, outcome: str) -> str:
        done = sum(1 for s in steps if s.state == "succeeded")
        text = f"{run.title}: {outcome}; {done} of {len(steps)} steps succeeded."
        eng = run.context.get("engine") or {}
        blocks = eng.get("block_errors") or {}
        if blocks:
            text += " " + "; ".join(f"{b}: {e.rstrip('.')}" for b, e in blocks.items()) + "."
        elif eng.get("failure"):
            text += f" First failure: {eng['failure'].rstrip('.')}."
        return text


# -- parameter helpers -------------------------------------------------------------------
class ParamErrors:
    """Collects every bad parameter, so a form or a command line shows them all at once
    instead of one per attempt. ``take(fn, ...)`` returns fn's value, or None after
    noting its ValidationError; ``raise_any()`` raises them together."""

    def __init__(self):
        self.messages: list[str] = []

    def take(self, fn, *args, **kwargs):
        """fn(*args, **kwargs), or None after noting its ValidationError."""
        try:
            return fn(*args, **kwargs)
        except ValidationError as exc:
            self.messages.extend(exc.messages)
            return None

    def add(self, message: str) -> None:
        self.messages.append(message)

    def raise_any(self) -> None:
        if self.messages:
            raise ValidationError(list(self.messages), code="invalid")


TRUE = {"1", "true", "yes", "on", "y"}
FALSE = {"0", "false", "no", "off", "n", ""}


def as_int(raw, name, *, minimum=None, maximum=None, default=None):
    if raw is None or raw == "":
        if default is None:
            raise ValidationError(f"{name} is required", code="required")
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ValidationError(f"{name} must be a whole number, not {raw!r}", code="invalid") from None
    if minimum is not None and value < minimum:
        raise ValidationError(f"{name} must be at least {minimum}, not {value}", code="min")
    if maximum is not None and value > maximum:
        raise ValidationError(f"{name} must be at most {maximum}, not {value}", code="max")
    return value


def as_bool(raw, name, default=False):
    if raw is None:
        return default
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValidationError(f"{name} must be true or false, not {raw!r}", code="invalid")


def as_choice(raw, name, choices, default):
    value = default if raw in (None, "") else str(raw).strip()
    if value not in choices:
        raise ValidationError(f"{name} must be one of {', '.join(choices)}, not {value!r}", code="invalid")
    return value


CUSTOM_PROPERTY = re.compile(r"^(Custom([1-9]|10)|[A-Za-z][A-Za-z0-9_ .-]{0,63})$")


def connection_named(raw, kind, *, required=True):
    """The named enabled connection of ``kind``, or the only one; None when there is none and not required."""
    qs = ServerConnection.objects.filter(kind=kind, enabled=True)
    label = {"vmm": "VMM", "scom": "SCOM"}.get(kind, kind)
    param = "connection" if kind == "vmm" else kind
    if raw not in (None, ""):
        if str(raw).lower() == "none" and not required:
            return None
        conn = qs.filter(name=str(raw).strip()).first()
        if conn is None:
            names = ", ".join(qs.values_list("name", flat=True)) or "none"
            raise ValidationError(f"{param}: no enabled {label} connection is named {raw!r} (enabled: {names})", code="invalid")
        return conn
    conns = list(qs[:2])
    if len(conns) == 1:
        return conns[0]
    if not conns:
        if required:
            raise ValidationError(f"no enabled {label} connection is configured", code="invalid")
        return None
    raise ValidationError(f"{param}: several {label} connections are enabled; name one with {param}=NAME", code="invalid")


OUTAGE_PARAM = {"name": "outage_minutes", "label": "Outage limit (minutes)", "type": "int", "min": 1, "max": 1440,
                "default": 15, "help": "How long the run waits for a server that does not answer (paused, trying "
                                       "again every 10 s) before it waits for the operator."}


def outage_minutes(raw) -> int:
    return as_int(raw.get("outage_minutes"), "outage_minutes", minimum=1, maximum=1440, default=15)


def reachable(conn, param: str) -> None:
    """A start check: connect to the server, authenticate, one read. Refused with the server's own error."""
    try:
        if conn.kind == "scom":
            scom.check(session_for(conn))
        else:
            vmm.list_clouds(session_for(conn))
    except errors.FabricError as exc:
        raise ValidationError(f"{param}: cannot use {conn.name}: {exc}", code="fabric") from exc


def param_named_in(message: str, names) -> str | None:
    """The parameter a runbook's message is about: its messages start with it ("cloud: no cloud
    named ...", "batch is required ..."); None when it names none of ``names``."""
    head = message.split(":", 1)[0].split(" ", 1)[0].strip()
    return head if head in names else None


def fabric_check(fn, what):
    """Call the fabric while validating; an unreachable server refuses the parameters clearly."""
    try:
        return fn()
    except errors.FabricError as exc:
        raise ValidationError(f"cannot check {what}: {exc}", code="fabric") from exc


def cloud_named(s, conn, cloud: str) -> str:
    """The fabric's spelling of ``cloud`` on ``conn``; refused, naming the clouds there are, when it has none such."""
    names = fabric_check(lambda: [c.name for c in vmm.list_clouds(s)], "the cloud")
    match = [n for n in names if n.lower() == cloud.lower()]
    if not match:
        raise ValidationError(f"cloud: VMM server {conn.name} has no cloud named {cloud!r} "
                              f"(clouds: {', '.join(sorted(names)) or 'none'})")
    return match[0]


def only_enabled_deployment(cm_conn, none_means: str) -> str:
    """The name of the one enabled software update deployment on ``cm_conn``; refused, naming them, when
    there are none or several (``none_means``: what deployment=none does for the runbook asking)."""
    deps = [d for d in fabric_check(lambda: cm.list_deployments(session_for(cm_conn)), "the deployments") if d.enabled]
    if len(deps) != 1:
        raise ValidationError(f"deployment: {cm_conn.name} has {len(deps)} enabled software update deployments "
                              f"({', '.join(d.name for d in deps) or 'none'}); name one with deployment=NAME, "
                              f"or deployment=none {none_means}", code="invalid")
    return deps[0].name
