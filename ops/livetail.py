"""One reader of a run's event table per process, shared by every watcher.

The database is the truth (DESIGN.md). Each websocket consumer of a run keeps
its own cursor (the last ``seq`` it sent), but the rows are read once per
process by a :class:`RunTail`: woken by a channel-layer poke, or by its own
timer (``SLIPWAY_EVENT_POLL_SECONDS``) when no poke can arrive (the embedded,
in-process channel layer cannot carry a poke from a worker process). After each
read the tail notifies its subscribers, which copy what they have not sent yet
out of the tail's buffer. 200 watchers of one run cost one small query per
tick, not 200.

Only *settled* events enter the buffer: events are accepted in ``seq`` order
without holes. If seq N+1 is visible before seq N (a writer that committed out
of order), the tail waits up to ``GAP_GRACE_SECONDS`` for N before moving on,
so a watcher never skips an event that was merely late.
"""
import asyncio
import bisect
import logging
import re
import time

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models.fields.json import KeyTransform

from .live import POKE_TYPE, run_group
from .models import Run, RunEvent, Step
from .models.runs import state_label
from .runbooks.registry import phase_label

log = logging.getLogger("slipway.live")

BUFFER_MAX = 2000  # events kept in memory per run; older ones are read from the table
FETCH_LIMIT = 500  # rows per query
GAP_GRACE_SECONDS = 3.0
FULL_STEP_SCAN_SECONDS = 2.0
GROUP_REJOIN_SECONDS = 3600.0  # channels-redis forgets group members after a day
IDLE_POLL_SECONDS = 1.0  # a finished run is re-read less often (an operator may still retry a step)

PHASES = KeyTransform("phases", KeyTransform("engine", "context"))  # the run's own phases, for its phase label
RUN_FIELDS = ("id", "kind", "state", "phase", "progress", "message", "cancel_requested", "abort_requested", "started_at",
              "finished_at")
STEP_FIELDS = ("id", "index", "phase", "action", "target", "compensation", "state", "progress", "attempts", "error", "job_id")


SEQ_DIGITS = re.compile(r"[0-9]{1,15}")   # ASCII digits only ("²".isdigit() is True); 15 keeps int() cheap


def parse_cursor(value) -> int | None:
    """A browser's "events after seq N" cursor: a non-negative integer, as int or ASCII decimal string.
    Anything else (negative, float, bool, '²', 5,000 digits) is None, for the caller to refuse."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 10**15 else None
    if isinstance(value, str) and SEQ_DIGITS.fullmatch(value.strip()):
        return int(value.strip())
    return None


def _iso(value):
    return value.isoformat() if value else None


def event_dict(row) -> dict:
    return {
        "seq": row["seq"],
        "at": _iso(row["at"]),
        "level": row["level"],
        "message": row["message"],
        "progress": row["progress"],
        "step_id": row["step_id"],
    }


def run_dict(row) -> dict:
    out = dict(row)
    out["state_label"] = state_label(row["state"], row["cancel_requested"], row["abort_requested"])
    out["is_active"] = row["state"] in Run.ACTIVE_STATES
    out["phase_label"] = phase_label(row["kind"], row["phase"], row["state"], out.pop("phases", None))
    out["started_at"] = _iso(row["started_at"])
    out["finished_at"] = _iso(row["finished_at"])
    return out


def step_dict(row) -> dict:
    out = dict(row)
    out["state_label"] = str(Step.State(row["state"]).label) if row["state"] in Step.State.values else row["state"]
    return out


# --- database reads (small: one run row, events after a seq, a few steps) ---

def fetch_events(run_id: int, after: int, upto: int | None = None, limit: int = FETCH_LIMIT) -> list[dict]:
    qs = RunEvent.objects.filter(run_id=run_id, seq__gt=after)
    if upto is not None:
        qs = qs.filter(seq__lte=upto)
    rows = qs.order_by("seq").values("seq", "at", "level", "message", "progress", "step_id")[:limit]
    return [event_dict(r) for r in rows]


def fetch_run(run_id: int) -> dict | None:
    row = Run.objects.filter(pk=run_id).annotate(phases=PHASES).values(*RUN_FIELDS, "phases").first()
    return run_dict(row) if row else None


def fetch_steps(run_id: int, ids=None) -> list[dict]:
    qs = Step.objects.filter(run_id=run_id)
    if ids is not None:
        qs = qs.filter(pk__in=list(ids))
    return [step_dict(r) for r in qs.order_by("index").values(*STEP_FIELDS)]


def events_payload(run_id: int, after: int) -> dict:
    """What an HTTP watcher gets for "events after seq N": the run, up to FETCH_LIMIT events,
    every step, the cursor to ask with next, and whether more are waiting already. A watcher
    that sees the run ended and ``more`` false has every event."""
    run = fetch_run(run_id)  # first: a run read as ended has committed every event it will ever have
    events = fetch_events(run_id, after)
    return {"run": run, "events": events, "steps": fetch_steps(run_id),
            "last_seq": events[-1]["seq"] if events else after, "more": len(events) == FETCH_LIMIT}


def beyond_last(after: int, run_id: int, newest: int) -> str | None:
    """seq only grows: a watcher cannot have seen more than the run has written. The refusal, or None."""
    if after > newest:
        return (f"'after' is {after}, but run {run_id} has only {newest} events; "
                f"resume with an 'after' of at most {newest}.")
    return None


def _read_tail(run_id: int, high: int | None, full_steps: bool) -> dict:
    """Everything one tick needs, in one trip to the database thread."""
    out = {"run": fetch_run(run_id), "events": [], "initial": high is None}
    if high is None:  # first read: the newest events only; older ones are read per watcher
        rows = list(
            RunEvent.objects.filter(run_id=run_id).order_by("-seq")
            .values("seq", "at", "level", "message", "progress", "step_id")[:FETCH_LIMIT]
        )
        out["events"] = [event_dict(r) for r in reversed(rows)]
        out["more_before"] = len(rows) == FETCH_LIMIT
    else:
        out["events"] = fetch_events(run_id, high)
    ids = {e["step_id"] for e in out["events"] if e["step_id"]}
    if full_steps or out["initial"]:
        out["steps"] = fetch_steps(run_id)
    elif ids:
        out["steps"] = fetch_steps(run_id, ids)
    else:
        out["steps"] = []
    return out


class RunTail:
    """Shared, per-process view of one run. Use :func:`subscribe`.

    The tail, not each watcher, is the member of the run's channel-layer group:
    one poke reaches a process once, however many of its sockets watch the run
    (200 watchers, one Redis message). It joins the group before its first read,
    and watchers wait for that read (``ready``) before they send their backlog,
    so a poke for anything committed after the backlog was read is never lost.
    """

    def __init__(self, run_id: int):
        self.run_id = int(run_id)
        self.subscribers: set = set()
        self.events: list[dict] = []  # settled events, ascending seq: all of (floor, high]
        self.seqs: list[int] = []
        self.floor = 0
        self.high: int | None = None
        self.pending: dict[int, dict] = {}  # events seen beyond a hole
        self.gap_since: float | None = None
        self.run: dict | None = None
        self.run_version = 0
        self.steps: dict[int, dict] = {}
        self.step_versions: dict[int, int] = {}
        self.version = 0
        self.last_full_scan = 0.0
        self.ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._listener: asyncio.Task | None = None
        self.layer = get_channel_layer()
        self.channel: str | None = None
        self.joined_at = 0.0
        self.error: str | None = None
        self.frames: dict = {}  # encoded frames shared by watchers at the same cursor, per tick

    # -- lifecycle --
    def start(self):
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"run-tail-{self.run_id}")

    def wake(self):
        self._wake.set()

    async def _join(self):
        if self.layer is None:
            return
        try:
            if self.channel is None:
                self.channel = await self.layer.new_channel()
            await self.layer.group_add(run_group(self.run_id), self.channel)
            self.joined_at = time.monotonic()
            if self._listener is None or self._listener.done():
                self._listener = asyncio.get_running_loop().create_task(self._listen(), name=f"run-tail-poke-{self.run_id}")
        except Exception as exc:  # no pokes then; the timer still finds everything
            log.warning("run %s: cannot join the channel-layer group: %s", self.run_id, exc)

    async def _listen(self):
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. Redis down: keep polling, try again shortly
                log.warning("run %s: channel layer receive failed: %s", self.run_id, exc)
                await asyncio.sleep(1.0)
                continue
            if message.get("type") == POKE_TYPE:
                self.wake()

    async def _leave(self):
        if self._listener is not None:
            self._listener.cancel()
        if self.layer is not None and self.channel is not None:
            try:
                await self.layer.group_discard(run_group(self.run_id), self.channel)
            except Exception as exc:
                log.warning("run %s: cannot leave the channel-layer group: %s", self.run_id, exc)

    async def _loop(self):
        poll = float(getattr(settings, "SLIPWAY_EVENT_POLL_SECONDS", 0.25))
        try:
            await self._join()  # join first, then read
            while self.subscribers:
                await self._tick(poll)
        finally:
            await asyncio.shield(self._leave())

    async def _tick(self, poll):
        if self.layer is not None and time.monotonic() - self.joined_at > GROUP_REJOIN_SECONDS:
            await self._join()
        self._wake.clear()
        try:
            changed = await self.refresh()
            self.error = None
        except Exception as exc:  # a failed read (e.g. database locked) is retried on the next tick
            changed, self.error = False, str(exc)
            log.warning("run %s: reading events failed: %s", self.run_id, exc)
        self.frames.clear()
        self.ready.set()
        if changed:
            for sub in list(self.subscribers):
                sub.tail_changed()
        idle = self.run is not None and not self.run["is_active"] and not self.pending
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=IDLE_POLL_SECONDS if idle else poll)
        except asyncio.TimeoutError:
            pass

    # -- reading --
    async def refresh(self) -> bool:
        now = time.monotonic()
        full = self.high is None or now - self.last_full_scan >= FULL_STEP_SCAN_SECONDS
        # re-read from the settled mark: a late event inside a hole must still be seen
        data = await database_sync_to_async(_read_tail)(self.run_id, self.high, full)
        if full:
            self.last_full_scan = now
        changed = False
        run = data["run"]
        if run is not None and run != self.run:
            if self.run is not None and (run["state"], run["phase"]) != (self.run["state"], self.run["phase"]):
                self.last_full_scan = 0.0  # re-read every step on the next tick
            self.run = run
            self.run_version += 1
            changed = True
        if data["initial"]:
            evs = data["events"]
            self.floor = evs[0]["seq"] - 1 if (evs and data.get("more_before")) else 0
            self.high = self.floor
        for ev in data["events"]:
            if ev["seq"] > self.high:
                self.pending[ev["seq"]] = ev
        changed |= self._settle(now)
        for st in data["steps"]:
            if self.steps.get(st["id"]) != st:
                self.steps[st["id"]] = st
                self.version += 1
                self.step_versions[st["id"]] = self.version
                changed = True
        return changed

    def _settle(self, now: float) -> bool:
        moved = False
        while self.pending:
            nxt = self.high + 1
            if nxt in self.pending:
                ev = self.pending.pop(nxt)
            elif self.gap_since is not None and now - self.gap_since >= GAP_GRACE_SECONDS:
                seq = min(self.pending)  # the hole did not fill: it is not a late commit
                ev = self.pending.pop(seq)
            else:
                if self.gap_since is None:
                    self.gap_since = now
                break
            self.gap_since = None
            self.events.append(ev)
            self.seqs.append(ev["seq"])
            self.high = ev["seq"]
            moved = True
        if len(self.events) > BUFFER_MAX:
            cut = len(self.events) - BUFFER_MAX
            self.floor = self.seqs[cut - 1]
            del self.events[:cut]
            del self.seqs[:cut]
        return moved

    # -- for subscribers --
    def events_after(self, seq: int) -> list[dict] | None:
        """Buffered events after ``seq``; None when ``seq`` is older than the buffer."""
        if seq < self.floor:
            return None
        return self.events[bisect.bisect_right(self.seqs, seq):]

    def steps_since(self, version: int) -> list[dict]:
        changed = [self.steps[i] for i, v in self.step_versions.items() if v > version]
        return sorted(changed, key=lambda s: s["index"])


_tails: dict[tuple[int, int], RunTail] = {}


def subscribe(run_id: int, subscriber) -> RunTail:
    """Register ``subscriber`` (has ``tail_changed()``) for a run's tail in this event loop."""
    key = (id(asyncio.get_running_loop()), int(run_id))
    tail = _tails.get(key)
    if tail is None:
        tail = _tails[key] = RunTail(run_id)
    tail.subscribers.add(subscriber)
    tail.start()
    return tail


def unsubscribe(tail: RunTail, subscriber) -> None:
    tail.subscribers.discard(subscriber)
    if not tail.subscribers:
        for key, value in list(_tails.items()):
            if value is tail:
                del _tails[key]
        if tail._task is not None:
            tail._task.cancel()
