"""Helpers for the engine/runbook tests: drive runs in-process through the real
task entry point (``ops.engine.tasks.advance_run``), with the django-q2 queue
replaced by a list."""
import time

import pytest


class Driver:
    def __init__(self, monkeypatch):
        from ops.engine import executor

        self.queue = []
        monkeypatch.setattr(executor, "enqueue", lambda run_id, token: self.queue.append((run_id, token)))

    def drive(self, until=None, timeout=60.0, rests=False):
        """Run queued tasks until the queue is empty (the run ended or waits) or ``until()`` is true.
        ``rests``: a run that gave its worker back while it waits (ops/engine/waits.py) is handed
        to the next task by the reaper, as in production, instead of ending the drive."""
        from ops.engine import reaper, tasks
        from ops.models import Run

        deadline = time.monotonic() + timeout
        while True:
            while self.queue:
                assert time.monotonic() < deadline, "the run did not finish in time"
                run_id, token = self.queue.pop(0)
                tasks.advance_run(run_id, token)
                if until is not None and until():
                    return
            resting = rests and Run.objects.filter(state=Run.State.RUNNING, lease_owner="").exists()
            if not resting:
                return
            assert time.monotonic() < deadline, "the run did not finish in time"
            time.sleep(0.05)
            reaper.reap(reschedule=False)


@pytest.fixture
def driver(monkeypatch, settings):
    settings.SLIPWAY_ENGINE_SLICE_SECONDS = 0.5
    settings.SLIPWAY_ENGINE_POLL_SECONDS = 0.01
    return Driver(monkeypatch)


def events(run):
    return list(run.events.order_by("seq").values_list("message", flat=True))


def batch_vms(sim, batch):
    return {vm["name"]: vm for vm in sim.state()["vms"] if vm["custom1"] == str(batch)}
