"""Runbooks by kind (the name used in URLs, the CLI and Run.kind)."""
from django.core.exceptions import ValidationError

from .base import Phase, Runbook
from .batch_checkpoint import BatchCheckpoint
from .checkpoint_cleanup import CheckpointCleanup
from .host_resume import HostResume
from .patch_cluster import PatchCluster
from .plan_update import PlanUpdate
from .vm_actions import VMCheckpoint, VMPower, VMRemoveCheckpoint, VMRestore

_REGISTRY: dict[str, Runbook] = {}


def register(runbook: Runbook) -> Runbook:
    _REGISTRY[runbook.kind] = runbook
    return runbook


def unregister(kind: str) -> None:
    _REGISTRY.pop(kind, None)


def get(kind: str) -> Runbook:
    try:
        return _REGISTRY[kind]
    except KeyError:
        raise ValidationError(f"unknown runbook {kind!r}; expected one of {', '.join(sorted(_REGISTRY))}",
                              code="unknown") from None


def phases_of(run) -> list[Phase]:
    """The phases stored with a run when it started (ops/engine/executor.py), else its runbook's static list."""
    stored = (run.context.get("engine") or {}).get("phases")
    if stored:
        return [Phase.from_dict(d) for d in stored]
    return get(run.kind).make_phases(run)


def all_runbooks() -> list[Runbook]:
    """The runbooks operators start (pages, CLI); the VM page's own (ops/runbooks/vm_actions.py) are left out."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY) if getattr(_REGISTRY[k], "listed", True)]


register(BatchCheckpoint())
register(PatchCluster())
register(CheckpointCleanup())
register(HostResume())
register(PlanUpdate())
for _rb in (VMCheckpoint(), VMRemoveCheckpoint(), VMRestore(), VMPower()):
    register(_rb)


def phase_label(kind: str, phase: str, state: str = "", phases=None) -> str:
    """What the run page says of a run's phase: "3/6 Stop the running VMs"; "all 6 done" once it
    succeeded. ``phases``: the run's own (dicts, as stored in ``run.context['engine']['phases']``)."""
    if phases:
        rows = [(d["name"], d["title"]) for d in phases]
    else:
        rb = _REGISTRY.get(kind)
        rows = [(p.name, p.title) for p in rb.phases] if rb else []
    names = [n for n, _ in rows]
    if not phase or phase not in names:
        return phase or "—"
    if state == "succeeded":
        return f"all {len(names)} done"
    i = names.index(phase)
    return f"{i + 1}/{len(names)} {rows[i][1]}"


def run_phase_label(run) -> str:
    """``phase_label`` of a run, with the phases stored with it."""
    return phase_label(run.kind, run.phase, run.state, (run.context.get("engine") or {}).get("phases"))
