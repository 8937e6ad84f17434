"""The run's event log: ``emit`` appends RunEvent rows with the next ``seq``.

``seq`` comes from ``Run.last_seq``, incremented by an UPDATE inside the
caller's transaction: on PostgreSQL the UPDATE row-locks the run until commit,
on SQLite the write lock is held from BEGIN IMMEDIATE; either way two writers
can never get the same ``seq``, and a rolled-back transaction leaves no gap.
Watchers are poked (``ops.live.poke_run``) only after the commit.
"""
import dataclasses

from django.db import transaction
from django.db.models import F

from .. import live
from ..models import Run, RunEvent


@dataclasses.dataclass
class Event:
    message: str
    level: str = "info"
    step: object = None
    progress: int | None = None
    data: dict | None = None


def emit(run, message, level="info", step=None, progress=None, data=None) -> RunEvent:
    return emit_many(run, [Event(message, level, step, progress, data)])[0]


def emit_many(run, events) -> list[RunEvent]:
    events = [e if isinstance(e, Event) else Event(**e) for e in events]
    if not events:
        return []
    with transaction.atomic():
        Run.objects.filter(pk=run.pk).update(last_seq=F("last_seq") + len(events))
        last = Run.objects.filter(pk=run.pk).values_list("last_seq", flat=True).get()
        first = last - len(events) + 1
        rows = [
            RunEvent(run_id=run.pk, seq=first + i, level=e.level, step=e.step, message=e.message[:10000],
                     progress=None if e.progress is None else max(0, min(100, int(e.progress))), data=e.data or {})
            for i, e in enumerate(events)
        ]
        RunEvent.objects.bulk_create(rows)
        run.last_seq = last
        run_id = run.pk
        transaction.on_commit(lambda: live.poke_run(run_id, last))
    return rows
