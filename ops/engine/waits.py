"""Steps that wait for a condition (``Outcome.wait``): a host back after a reboot, a deployment's
state on a device. Such a step is RUNNING with ``job_id == WAIT`` (it holds no VMM job slot) and
``data['retry_at']``: the engine acts it again when that time comes and fails it once the
runbook's deadline (seconds since it first waited) has passed.

A run whose only work is waiting holds no worker: the increment releases the lease until the
next step is due (``ops/engine/executor.py``, ``Increment.step``) and the reaper
(``ops/engine/reaper.py``) hands it to a worker then. An operator's cancel or abort wakes it at once.
"""
import time

from ..models import Step
from ..runbooks.base import Outcome

WAIT = "wait"
# a run whose next due wait is further off than this gives its worker back
HOLD_WORKER_SECONDS = 2.0
KEYS = ("wait_since", "retry_at", "waiting_for", "wait_deadline")


def is_waiting(s) -> bool:
    return s.state == Step.State.RUNNING and s.job_id == WAIT


def due(steps, now: float | None = None) -> list:
    now = time.time() if now is None else now
    return [s for s in steps if is_waiting(s) and s.data.get("retry_at", 0) <= now]


def next_due_in(steps, now: float | None = None) -> float | None:
    """Seconds until the first waiting step is due (0: now); None when no step waits."""
    now = time.time() if now is None else now
    times = [s.data.get("retry_at", 0) - now for s in steps if is_waiting(s)]
    return max(0.0, min(times)) if times else None


def apply_wait(s, outcome: Outcome, now: float | None = None) -> Outcome | None:
    """Put a wait on its step (in memory). Returns the failure when its deadline has passed, else
    None. The first wait of a step, or a new reason, is worth an event (``s.data['wait_news']``)."""
    now = time.time() if now is None else now
    since = s.data.setdefault("wait_since", now)
    deadline = outcome.request
    if deadline is not None and now - since > float(deadline):
        clear(s)
        return Outcome.failed(outcome.failure or f"{outcome.message}; gave up after {float(deadline):.0f} s",
                              outcome.result, outcome.failure_context)
    news = s.data.get("waiting_for") != outcome.message
    s.state, s.job_id = Step.State.RUNNING, WAIT
    s.data.update(retry_at=now + max(0.05, outcome.delay), waiting_for=outcome.message, wait_news=news)
    if deadline is not None:
        s.data["wait_deadline"] = since + float(deadline)
    return None


def clear(s) -> None:
    for k in KEYS + ("wait_news",):
        s.data.pop(k, None)
    if s.job_id == WAIT:
        s.job_id = ""
