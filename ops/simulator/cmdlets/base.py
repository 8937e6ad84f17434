"""Cmdlet metadata, PowerShell-style parameter binding and the per-call context.

Binding follows PowerShell: parameter names are case-insensitive and may be abbreviated
to a unique prefix (aliases count); a switch given without a value is ``$true``; named
parameters first, then positional values by ``position``; then, per pipeline input
object, the first not-yet-bound ``pipeline`` parameter whose type accepts it (by value).
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import time
import typing
import uuid

from .. import access
from .. import errors as E
from ..contract import PSError, SimEnum, SimObject
from ..jobs import FAILED, INFO
from . import objects as O

REGISTRY: dict[str, "CmdletDef"] = {}
TABLES = {"vm": "vms", "host": "hosts", "cluster": "clusters", "cloud": "clouds", "role": "roles",
          "checkpoint": "checkpoints", "monobj": "scom", "maint": "maint"}
KIND_WORDS = {"vm": "virtual machine", "host": "host", "cluster": "host cluster", "cloud": "cloud",
              "role": "user role", "checkpoint": "checkpoint", "job": "job", "monobj": "monitoring object",
              "maint": "maintenance window"}
TYPE_NAMES = {"string": "System.String", "strings": "System.String[]", "switch": "System.Management.Automation.SwitchParameter",
              "int": "System.Int32", "guid": "System.Guid", "datetime": "System.DateTime", "any": "System.Object",
              "bool": "System.Boolean"}


@dataclasses.dataclass
class P:
    name: str
    type: str = "string"
    mandatory: bool = False
    position: int | None = None
    pipeline: bool = False
    many: bool = False
    choices: tuple = ()
    aliases: tuple = ()

    @property
    def type_name(self) -> str:
        t = TYPE_NAMES.get(self.type) or O.TYPES.get(self.type, "System.Object")
        return t + ("[]" if self.many and not t.endswith("[]") else "")


COMMON = [P("ErrorAction", choices=("Continue", "Stop", "SilentlyContinue", "Ignore", "Inquire", "Suspend"),
            aliases=("ea",)),
          P("WarningAction", aliases=("wa",)), P("InformationAction", aliases=("infa",)),
          P("Verbose", "switch", aliases=("vb",)), P("Debug", "switch", aliases=("db",)),
          P("ErrorVariable", aliases=("ev",)), P("WarningVariable", aliases=("wv",)),
          P("OutVariable", aliases=("ov",))]
VMM_COMMON = [P("VMMServer", "any"), P("OnBehalfOfUser"), P("OnBehalfOfUserRole", "role")]
JOB_COMMON = [P("JobVariable"), P("RunAsynchronously", "switch"), P("PROTipID", "guid")]


@dataclasses.dataclass
class CmdletDef:
    name: str
    params: list
    func: typing.Callable
    collect: bool = False

    def match(self, given: str) -> P:
        key = given.lstrip("-").lower()
        for p in self.params:
            if p.name.lower() == key or key in (a.lower() for a in p.aliases):
                return p
        matches = [p for p in self.params if p.name.lower().startswith(key)]
        if not matches:
            raise E.parameter_not_found(given.lstrip("-"))
        if len(matches) > 1:
            raise E.ambiguous_parameter(given.lstrip("-"), [p.name for p in matches])
        return matches[0]


def cmdlet(name: str, params: list, *, vmm=False, job=False, collect=False):
    def deco(func):
        plist = list(params) + (VMM_COMMON if vmm else []) + (JOB_COMMON if job else []) + COMMON
        REGISTRY[name.lower()] = CmdletDef(name, plist, func, collect)
        return func
    return deco


# ---- conversion --------------------------------------------------------------------------
def _unwrap(value):
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return value[0]
    return value


def convert(f, p: P, value):
    if p.many:
        items = list(value) if isinstance(value, (list, tuple)) else [value]
        return [_convert_one(f, p, v) for v in items]
    return _convert_one(f, p, _unwrap(value))


def _convert_one(f, p: P, value):
    t = p.type
    if t == "any":
        return value
    if t == "switch":
        if value is None:
            return True
        if isinstance(value, (bool, int)):
            return bool(value)
        raise E.cannot_convert(p.name, value, "System.Management.Automation.SwitchParameter")
    if value is None:
        if p.mandatory:
            raise E.null_not_allowed(p.name)
        return None
    if t in ("string", "strings"):
        if isinstance(value, (list, tuple, dict)):
            raise E.cannot_convert(p.name, value, "System.String")
        s = _to_str(value)
        if p.choices:
            for c in p.choices:
                if c.lower() == s.lower():
                    return c
            raise E.validate_set(p.name, s, p.choices)
        return s
    if t == "int":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise E.cannot_convert(p.name, value, "System.Int32")
        try:
            return int(value)
        except ValueError:
            raise E.cannot_convert(p.name, value, "System.Int32", "Input string was not in a correct format.")
    if t == "bool":
        if isinstance(value, (bool, int)):
            return bool(value)
        raise E.cannot_convert(p.name, value, "System.Boolean")
    if t == "guid":
        if isinstance(value, uuid.UUID):
            return value
        if isinstance(value, str):
            try:
                return uuid.UUID(value.strip("{}"))
            except ValueError:
                pass
            raise E.cannot_convert(p.name, value, "System.Guid", "Guid should contain 32 digits with 4 dashes "
                                   "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
        raise E.cannot_convert(p.name, value, "System.Guid")
    if t == "datetime":
        if isinstance(value, _dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=_dt.timezone.utc)
        if isinstance(value, str):
            try:
                d = _dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
                return d if d.tzinfo else d.replace(tzinfo=_dt.timezone.utc)
            except ValueError:
                raise E.cannot_convert(p.name, value, "System.DateTime",
                                       "String was not recognized as a valid DateTime.")
        raise E.cannot_convert(p.name, value, "System.DateTime")
    return resolve(f, t, value, p.name)


def _to_str(value) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, SimEnum):
        return value.name
    if isinstance(value, SimObject):
        return value.to_string
    return str(value)


def resolve(f, kind: str, value, pname: str = ""):
    """The live entity a value stands for (an object we output, or one with our type name and ID)."""
    type_name = O.TYPES[kind]
    if isinstance(value, SimObject):
        ref = getattr(value, "_sim_ref", None)
        ent_id = None
        if ref is not None and ref[0] == kind:
            ent_id = ref[1]
        elif any(tn in (type_name, "Deserialized." + type_name) for tn in value.type_names):
            raw = value.get("ID")
            try:
                ent_id = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
            except ValueError:
                ent_id = None
        else:
            raise E.cannot_convert(pname, value, type_name)
        with f.lock:
            ent = f.jobs.jobs.get(ent_id) if kind == "job" else getattr(f, TABLES[kind]).get(ent_id)
        if ent is None:
            raise E.vmm_error(E.E_NOT_FOUND, f"Unable to find the specified {KIND_WORDS[kind]}. The object may "
                              "have been deleted.", category="ObjectNotFound", target=value)
        return ent
    raise E.cannot_convert(pname, value, type_name)


def bind(f, cdef: CmdletDef, args) -> dict:
    bound: dict = {}
    positional = []
    i = 0
    while i < len(args):
        a = args[i]
        if a.name is None:
            positional.append(a.value)
            i += 1
            continue
        p = cdef.match(a.name)
        if p.name in bound:
            raise E.parameter_bound_twice(p.name)
        if a.has_value:
            value = a.value
        elif p.type == "switch":
            value = True
        elif i + 1 < len(args) and args[i + 1].name is None:
            value = args[i + 1].value
            i += 1
        else:
            raise E.missing_argument(p.name, p.type_name)
        bound[p.name] = convert(f, p, value)
        i += 1
    free = sorted((p for p in cdef.params if p.position is not None and p.name not in bound),
                  key=lambda p: p.position)
    for value in positional:
        if not free:
            from ..language import ps_str
            raise E.positional_not_found(ps_str(value))
        p = free.pop(0)
        bound[p.name] = convert(f, p, value)
    return bound


def bind_input(f, cdef: CmdletDef, bound: dict, item) -> dict | None:
    for p in cdef.params:
        if p.pipeline and p.name not in bound:
            try:
                value = convert(f, p, item)
            except PSError as e:
                if e.error_id == "CannotConvertArgumentNoMessage":
                    continue
                raise
            b = dict(bound)
            b[p.name] = value
            return b
    return None


def check_mandatory(cdef: CmdletDef, bound: dict):
    missing = [p.name for p in cdef.params if p.mandatory and p.name not in bound]
    if missing:
        raise E.missing_mandatory(missing)


# ---- context -----------------------------------------------------------------------------
class Context:
    def __init__(self, session, cdef: CmdletDef, bound: dict, out):
        self.session = session
        self.engine = session.engine
        self.f = session.engine.fabric
        self.cdef = cdef
        self.name = cdef.name
        self.a = bound
        self.out = out
        self.acting = access.acting_for(self.f, bound, cdef.name)   # -OnBehalfOfUser/-Role (ops/simulator/access.py)

    @property
    def user(self) -> str:
        """Who the call runs as: the tenant it acts for, else the connected user (a job's Owner)."""
        return self.acting.user if self.acting else self.session.username

    def allow(self, vm, allowed: tuple = ()) -> None:
        """Refuse when acting for a tenant whose role may not act on ``vm`` (see access.require)."""
        with self.f.lock:
            access.require(self.f, self.acting, vm, allowed, self.name)

    def visible(self, vms) -> list:
        return [v for v in vms if self.acting is None or access.in_scope(self.acting, v)]

    def admin_only(self) -> None:
        access.admin_only(self.acting, self.name)

    def error(self, err: PSError):
        action = (self.a.get("ErrorAction") or self.session.vars.get("erroractionpreference") or "Continue")
        action = str(action).lower()
        if action == "stop":
            raise err
        if action in ("silentlycontinue", "ignore"):
            return
        self.out.write_error(err)

    def warn(self, message: str):
        if str(self.a.get("WarningAction") or "").lower() not in ("silentlycontinue", "ignore"):
            self.out.write_warning(message)

    def vmm_fail(self, failure) -> PSError:
        return failure.to_pserror(self.name)

    def fault_now(self, targets):
        """Faults for cmdlets without a job: raise (fail) or block until stopped (hang)."""
        fault = self.f.faults.take(self.name, targets) if self.f.faults is not None else None
        if fault is None:
            return
        if fault.mode == "hang":
            while not self.out.stopped():
                time.sleep(0.02)
            raise E.pipeline_stopped()
        raise E.vmm_error(fault.code, fault.message, self.name)

    def job_result(self, job, result_fn) -> list:
        jv = self.a.get("JobVariable")
        if jv:
            with self.f.lock:
                self.session.vars[jv.lower()] = O.job_obj(self.f, job)
        if not self.a.get("RunAsynchronously"):
            self.wait(job)
            if job.status == FAILED:
                raise E.vmm_error(job.error_code, job.problem, self.name, category="OperationStopped")
            if job.status == INFO:
                self.warn(f"{job.problem} (Error ID: {job.error_code})")
        with self.f.lock:
            result = result_fn()
        return [] if result is None else [result]

    def wait(self, job):
        last = -1
        while True:
            with self.f.lock:
                self.f.advance()
                done, pct = job.done, job.progress
                remaining = job.start_mono + job.total - self.f.jobs.clock()
            if pct != last:
                self.out.write_progress(job.name, "Completed" if done else f"Running ({pct} %)", pct, 0)
                last = pct
            if done:
                return
            if self.out.stopped():
                raise E.pipeline_stopped()
            time.sleep(0.05 if job.hang else min(0.05, max(0.0005, remaining)))
