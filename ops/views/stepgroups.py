"""The run page's steps, grouped by phase, so a run of hundreds of steps stays readable:
a phase whose steps all went well is folded away, one that failed or runs is open."""
import dataclasses

from ..models import Step
from ..runbooks import registry

ATTENTION = (Step.State.FAILED, Step.State.RUNNING, Step.State.WAITING)


@dataclasses.dataclass
class PhaseGroup:
    name: str
    title: str
    steps: list

    @property
    def counts(self) -> list[tuple[str, str, int]]:
        """(state, label, how many) for the states present, in the states' own order."""
        present = [s.state for s in self.steps]
        return [(value, label.lower(), present.count(value)) for value, label in Step.State.choices if value in present]

    @property
    def open(self) -> bool:
        return any(s.state in ATTENTION for s in self.steps)


def phase_titles(run) -> dict[str, str]:
    """The run's own phases (made when it started), in order."""
    stored = (run.context.get("engine") or {}).get("phases")
    if stored:
        return {d["name"]: d["title"] for d in stored}
    try:
        rb = registry.get(run.kind)
    except Exception:  # noqa: BLE001 - a run of a runbook no longer registered still shows its steps
        return {}
    return {p.name: p.title for p in rb.phases}


def group_steps(run, steps) -> list[PhaseGroup]:
    """The run's steps by phase, in the runbook's phase order (phases it no longer declares last)."""
    titles = phase_titles(run)
    groups: dict[str, PhaseGroup] = {}
    for step in steps:
        if step.phase not in groups:
            groups[step.phase] = PhaseGroup(step.phase, titles.get(step.phase, step.phase), [])
        groups[step.phase].steps.append(step)
    order = list(titles)
    return sorted(groups.values(), key=lambda g: (order.index(g.name) if g.name in order else len(order),
                                                  g.steps[0].index))
