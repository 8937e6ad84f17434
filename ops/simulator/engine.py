"""The simulator's PowerShell engine: implements ``contract.Engine`` and ``contract.Session``.

``SimEngine(fabric)`` or ``SimEngine.from_scenario('demo' | 'scale' | path, vms=None,
time_scale=1.0, state_file=None)``. ``open_session(username)`` gives a session with its
own variables; ``execute(statements, out)`` runs each Statement's pipeline. Before a
pipeline runs, every command is resolved and its named/positional parameters bound (so
an unknown cmdlet or parameter fails the whole pipeline before anything happens); then
commands run one after the other, each getting the previous one's output as pipeline
input (bound by value, item by item; Select-Object, ConvertTo-Json and Out-Null take
all input at once). Scripts (``is_script``) are parsed completely by ``language.py``
first; their statements run in the session, so ``$vm = ...`` persists in it.

``control(dict)`` ops: ``fault`` (cmdlet, target, mode fail|hang, message, times, code),
``clear_faults`` (also cancels hung jobs: Status Canceled, changes undone, locks
released), ``faults``, ``server_down`` (value), ``time_scale`` (value), ``state``,
``save`` (optional path), ``reset`` (rebuild the scenario). Each returns a dict with
``ok``.
"""
from __future__ import annotations

import os
import threading

from . import errors as E
from . import language
from .cmdlets import base, objects as O
from .cmdlets import generic as _generic, scom as _scom, userroles as _userroles, vmm as _vmm  # noqa: F401  (register cmdlets)
from .contract import PSError, SimObject, Statement
from .faults import FaultSet
from .language import Arg


class SimSession:
    def __init__(self, engine: "SimEngine", username: str):
        self.engine = engine
        self.username = username
        self.vars: dict = {}
        self.var_names: dict = {}
        self.closed = False

    # ---- contract.Session ----------------------------------------------------------------
    def execute(self, statements: list[Statement], out) -> None:
        for st in statements:
            for item in self.run_statement(st, out):
                out.write_output(item)

    def close(self) -> None:
        self.closed = True
        self.vars.clear()

    # ---- running -------------------------------------------------------------------------
    def run_statement(self, st: Statement, out) -> list:
        plan = []
        for spec in st.commands:
            if spec.is_script:
                plan.append(("script", language.parse(spec.name), spec.parameters))
            else:
                args = [Arg(n.lstrip("-") if isinstance(n, str) else None, v, True) for n, v in spec.parameters]
                plan.append(("cmd", spec.name, args))
        return self._run(plan, None, out)

    def run_commands(self, commands, items, out) -> list:
        return self._run([("cmd", name, args) for name, args in commands], items, out)

    def _run(self, plan, items, out) -> list:
        f = self.engine.fabric
        prepared = []
        for kind, what, args in plan:
            if kind == "script":
                prepared.append((kind, what, args))
                continue
            cdef = base.REGISTRY.get(what.lower()) if isinstance(what, str) else None
            if cdef is None:
                raise E.command_not_found(str(what))
            prepared.append((kind, cdef, base.bind(f, cdef, args)))
        for kind, what, bound in prepared:
            if kind == "script":
                items = self._run_script(what, bound, out)
                continue
            items = self._invoke(what, bound, items, out)
        return items or []

    def _run_script(self, script, params, out) -> list:
        interp = language.Interpreter(self.vars, lambda cmds, inp: self.run_commands(cmds, inp, out), self.refresh)
        for d in script.params:
            self.var_names[d.name.lower()] = d.name
        return interp.run(script, params)

    def _invoke(self, cdef, bound, items, out) -> list:
        f = self.engine.fabric
        if "JobVariable" in bound and bound["JobVariable"]:
            bound["JobVariable"] = bound["JobVariable"].lstrip("$")
            self.var_names[bound["JobVariable"].lower()] = bound["JobVariable"]
        if cdef.collect:
            return list(cdef.func(base.Context(self, cdef, bound, out), bound, list(items or [])))
        if items is None:
            base.check_mandatory(cdef, bound)
            return list(cdef.func(base.Context(self, cdef, bound, out), bound))
        results = []
        for item in items:
            b = base.bind_input(f, cdef, bound, item)
            ctx = base.Context(self, cdef, bound, out)
            if b is None:
                ctx.error(E.input_not_bound(item))
                continue
            base.check_mandatory(cdef, b)
            ctx.a = b
            results.extend(cdef.func(ctx, b))
        return results

    def refresh(self, value):
        """Objects that stand for fabric entities are re-read on use (like VMM's live objects)."""
        if not isinstance(value, SimObject):
            return value
        ref = getattr(value, "_sim_ref", None)
        if ref is None:
            return value
        kind, ent_id = ref
        f = self.engine.fabric
        builders = {"job": O.job_obj, "vm": O.vm_obj, "host": O.host_obj, "checkpoint": O.checkpoint_obj,
                    "role": O.role_obj, "cluster": O.cluster_obj, "cloud": O.cloud_obj, "monobj": O.monobj,
                    "maint": O.maint_obj}
        if kind not in builders or len(value.properties) <= 2 and kind != "job":
            return value  # unknown kind, or a small reference object: keep it small
        with f.lock:
            f.advance()
            table = f.jobs.jobs if kind == "job" else getattr(f, base.TABLES[kind])
            ent = table.get(ent_id)
            return builders[kind](f, ent) if ent is not None else value


class SimEngine:
    def __init__(self, fabric, state_file: str | None = None, scenario: dict | None = None):
        self.fabric = fabric
        if fabric.faults is None:
            fabric.faults = FaultSet()
        self.state_file = state_file
        self.scenario = scenario   # how to rebuild (for 'reset')
        self._down = False
        self._autosave: threading.Thread | None = None
        self._stop = threading.Event()

    @classmethod
    def from_scenario(cls, name_or_path: str = "demo", vms: int | None = None, time_scale: float = 1.0,
                      state_file: str | None = None) -> "SimEngine":
        from . import scenario
        spec = {"name": name_or_path, "vms": vms, "time_scale": time_scale}
        if state_file and os.path.exists(state_file):
            fabric = scenario.load_state(state_file)
            fabric.time_scale = time_scale
        else:
            fabric = scenario.build(name_or_path, vms=vms, time_scale=time_scale)
        return cls(fabric, state_file=state_file, scenario=spec)

    # ---- contract.Engine -----------------------------------------------------------------
    def open_session(self, username: str) -> SimSession:
        return SimSession(self, username)

    def server_down(self) -> bool:
        return self._down

    def control(self, command: dict) -> dict:
        op = str(command.get("op", "")).lower()
        f = self.fabric
        try:
            if op == "fault":
                fault = f.faults.add(command)
                return {"ok": True, "fault": fault.to_dict()}
            if op == "clear_faults":
                f.faults.clear()
                with f.lock:
                    canceled = f.jobs.cancel_hung()
                return {"ok": True, "canceled_hung_jobs": canceled}
            if op == "faults":
                return {"ok": True, "faults": f.faults.to_list()}
            if op == "server_down":
                self._down = bool(command.get("value", True))
                return {"ok": True, "server_down": self._down}
            if op == "time_scale":
                value = float(command["value"])
                if value < 0:
                    raise ValueError("time_scale must be >= 0")
                with f.lock:
                    f.time_scale = value
                return {"ok": True, "time_scale": value}
            if op == "state":
                return {"ok": True, **self.state()}
            if op == "save":
                path = self.save(command.get("path"))
                return {"ok": True, "path": path}
            if op == "reset":
                self.reset()
                return {"ok": True}
        except (ValueError, KeyError, TypeError, OSError) as exc:
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        return {"ok": False, "error": f"unknown op {op!r}"}

    # ---- state ---------------------------------------------------------------------------
    def state(self) -> dict:
        from .jobs import utcnow
        f = self.fabric
        with f.lock:
            f.advance()
            vms = []
            for vm in sorted(f.vms.values(), key=lambda v: v.name.lower()):
                cloud = f.clouds.get(vm.cloud_id) if vm.cloud_id else None
                vms.append({"name": vm.name, "id": str(vm.id), "host": f.hosts[vm.host_id].name,
                            "status": vm.shown_status, "ha": vm.ha, "memory_mb": vm.memory_mb,
                            "cloud": cloud.name if cloud else None, "owner": vm.owner, "custom1": vm.custom[0],
                            "checkpoints": [c.name for c in f.checkpoints_of(vm.id)],
                            "user_role": f.roles[vm.user_role_id].name if vm.user_role_id in f.roles else None})
            hosts = [{"name": h.name, "id": str(h.id),
                      "cluster": f.clusters[h.cluster_id].name if h.cluster_id else None,
                      "maintenance": h.maintenance, "memory_mb": h.memory_mb, "free_memory_mb": f.free_mb(h),
                      "vms": len(f.vms_on(h.id))} for h in sorted(f.hosts.values(), key=lambda h: h.name.lower())]
            now = utcnow()
            scom = [{"instance": f.scom[m.instance_id].display_name, "start": m.start.isoformat(),
                     "scheduled_end": m.scheduled_end.isoformat(), "reason": m.reason, "comment": m.comment}
                    for m in f.maint.values() if m.active(now) and m.instance_id in f.scom]
            jobs = [{"id": str(j.id), "name": j.name, "cmdlet": j.cmdlet, "status": j.status, "owner": j.owner,
                     "progress": j.progress, "result": j.result_name, "error_code": j.error_code,
                     "problem": j.problem} for j in (f.jobs.jobs[i] for i in f.jobs.order)]
            return {"vmm_server": f.vmm_server, "scom_server": f.scom_server, "time_scale": f.time_scale,
                    "server_down": self._down, "vms": vms, "hosts": hosts, "scom_maintenance": scom,
                    "jobs": jobs, "faults": f.faults.to_list(), "user_roles": _roles_state(f)}

    def save(self, path: str | None = None) -> str:
        from . import scenario
        path = path or self.state_file
        if not path:
            raise ValueError("no state file configured")
        scenario.save_state(self.fabric, path)
        return path

    def reset(self) -> None:
        from . import scenario
        spec = self.scenario or {"name": "demo"}
        new = scenario.build(spec["name"], vms=spec.get("vms"), time_scale=self.fabric.time_scale)
        f = self.fabric
        with f.lock:
            keep = f.lock, f.faults
            f.__dict__.update(new.__dict__)
            f.lock, f.faults = keep
            f.faults.clear()

    def start_autosave(self, interval: float = 30.0) -> None:
        """Save the state file every ``interval`` seconds (daemon thread) until ``close()``."""
        if not self.state_file or self._autosave is not None:
            return

        def loop():
            while not self._stop.wait(interval):
                try:
                    self.save()
                except OSError:
                    pass
        self._autosave = threading.Thread(target=loop, name="sim-autosave", daemon=True)
        self._autosave.start()

    def close(self) -> None:
        self._stop.set()
        if self.state_file:
            self.save()


_ = PSError


def _roles_state(f) -> list[dict]:
    """User roles for the control channel's state: members, clouds and per-cloud permissions by name."""
    def cloud(cid):
        return f.clouds[cid].name if cid in f.clouds else str(cid)
    return [{"name": r.name, "id": str(r.id), "profile": r.profile, "members": list(r.members),
             "clouds": [cloud(c) for c in r.cloud_ids],
             "permissions": {cloud(c): list(r.permissions.get(str(c), [])) for c in r.cloud_ids}}
            for r in sorted(f.roles.values(), key=lambda r: r.name.lower())]
