"""A patch run's timeline: one row per node, one segment per phase on a shared time axis, the
current one growing, failures red. Rendered server-side as SVG (templates/ops/runs/_timeline.html)
from the run's steps; the run page fetches it again when its steps change (static/js/run-timeline.js),
so it grows from the same events the log shows."""
from __future__ import annotations

import dataclasses

from django.utils import timezone

from ..models import Step
from ..runbooks.base import own
from ..runbooks.registry import phases_of

WIDTH, LABEL, ROW = 1000, 96, 30
COLOURS = {"succeeded": "#2f855a", "failed": "#c53030", "running": "#2b6cb0", "waiting": "#b7791f",
           "skipped": "#a0aec0", "cancelled": "#a0aec0", "pending": "#cbd5e0"}


@dataclasses.dataclass
class Segment:
    title: str
    state: str
    x: float
    w: float
    seconds: float

    @property
    def colour(self) -> str:
        return COLOURS.get(self.state, "#718096")


@dataclasses.dataclass
class Lane:
    node: str
    y: int
    segments: list
    phase: str = ""
    state: str = "pending"
    reboot_s: float | None = None
    vms: int = 0
    home: str = ""
    updates: int = 0


def _state(steps) -> str:
    states = {s.state for s in steps}
    for s in ("failed", "running", "waiting", "pending"):
        if s in states:
            return s
    return "succeeded" if "succeeded" in states else (states.pop() if states else "pending")


def build(run, steps=None) -> dict:
    steps = list(run.steps.order_by("index")) if steps is None else steps
    now = timezone.now()
    t0 = run.started_at or run.created_at
    t1 = now if run.is_active else (run.finished_at or now)
    span = max(1.0, (t1 - t0).total_seconds())
    scale = (WIDTH - LABEL - 8) / span
    by_phase: dict[str, list] = {}
    for s in steps:
        by_phase.setdefault(s.phase, []).append(s)
    mine = own(run)
    pre = {n["short"]: n for n in (run.params.get("preflight") or {}).get("nodes", [])}
    lanes: dict[str, Lane] = {}
    for p in phases_of(run):
        if not p.block:
            continue
        node = p.block.split(" ", 1)[-1]
        lane = lanes.setdefault(node, Lane(node, 24 + ROW * len(lanes), []))
        mine_steps = [s for s in by_phase.get(p.name, []) if s.started_at]
        if not mine_steps:
            continue
        start = min(s.started_at for s in mine_steps)
        ends = [s.finished_at for s in mine_steps if s.finished_at]
        open_ = any(s.state not in Step.FINAL_STATES for s in by_phase[p.name])
        end = t1 if open_ or not ends else max(ends)
        seconds = max(0.0, (end - start).total_seconds())
        state = _state(by_phase[p.name])
        title = p.title.split(": ", 1)[-1]
        lane.segments.append(Segment(title, state, LABEL + (start - t0).total_seconds() * scale,
                                     max(2.0, seconds * scale), seconds))
        lane.phase, lane.state = title, state
        if p.name.startswith("back@"):
            lane.reboot_s = seconds
    for node, lane in lanes.items():
        record = (mine.get(f"record:{node}") or {}).get("vms") or []
        lane.vms = len(record)
        away = mine.get(f"away:{node}")
        lane.home = ("away: " + ", ".join(away)) if away else ("home, verified" if away == [] else "")
        if mine.get(f"patched:{node}"):
            lane.updates = len(pre.get(node, {}).get("updates") or [])
    ticks = [{"x": LABEL + i * (WIDTH - LABEL - 8) / 4, "label": _clock(span * i / 4)} for i in range(5)]
    return {"lanes": list(lanes.values()), "ticks": ticks, "width": WIDTH, "label": LABEL,
            "height": 24 + ROW * max(1, len(lanes)) + 8, "colours": COLOURS}


def _clock(seconds: float) -> str:
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"

