"""Engine mechanics: leases, the event log, the per-server bound, the reaper."""
import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from ops.engine import executor, lease, tasks
from ops.engine.events import emit, emit_many
from ops.models import Run, Step
from ops.services.runs import start_run

from ._engine_support import driver  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def bare_run(db):
    return Run.objects.create(kind="batch-checkpoint", title="t")


def test_lease_is_compare_and_set(bare_run):
    assert lease.take(bare_run.pk, "a")
    assert not lease.take(bare_run.pk, "b")
    lease.renew(bare_run.pk, "a")
    Run.objects.filter(pk=bare_run.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert lease.take(bare_run.pk, "b")  # expired: a new owner
    with pytest.raises(lease.LeaseLost):
        lease.renew(bare_run.pk, "a")  # the old owner can never commit again
    assert not lease.claim_free(bare_run.pk, "c")  # a live chain is left alone
    assert lease.release(bare_run.pk, "b")
    assert lease.claim_free(bare_run.pk, "c")


def test_event_seq_is_dense_and_a_rollback_leaves_no_gap(bare_run):
    emit(bare_run, "one")
    with pytest.raises(RuntimeError), transaction.atomic():
        emit(bare_run, "lost")
        raise RuntimeError
    emit_many(bare_run, [{"message": "two"}, {"message": "three", "level": "warning"}])
    rows = list(bare_run.events.order_by("seq").values_list("seq", "message"))
    assert rows == [(1, "one"), (2, "two"), (3, "three")]
    bare_run.refresh_from_db()
    assert bare_run.last_seq == 3


def test_in_flight_jobs_per_server_never_exceed_the_bound_across_runs(sim, operator, driver, monkeypatch):
    sim.vmm.max_concurrent_jobs = 3
    sim.vmm.save()
    seen = []
    original = executor.Increment.reserve

    def watch(self, wanted):
        granted = original(self, wanted)
        seen.append(Step.objects.filter(run__state__in=Run.ACTIVE_STATES, state="running").exclude(job_id="").count())
        return granted

    monkeypatch.setattr(executor.Increment, "reserve", watch)
    runs = [start_run(operator, "batch-checkpoint", {"batch": b}) for b in ("1", "3")]
    driver.drive()
    assert {r.state for r in Run.objects.filter(pk__in=[r.pk for r in runs])} == {Run.State.SUCCEEDED}
    assert max(seen) == 3


def test_reaper_resumes_a_run_whose_worker_died(sim, operator, driver):
    run = start_run(operator, "batch-checkpoint", {"batch": "1"})
    (_, dead_token), = driver.queue
    driver.queue.clear()  # the worker that had the task died with it
    assert tasks.reap_expired_leases() == []  # the lease is still valid: nothing to do
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.reap_expired_leases() == [run.pk]
    assert len(driver.queue) == 1
    assert tasks.advance_run(run.pk, dead_token) == "not-leased"  # a stale task does nothing
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED
    assert run.events.filter(message__contains="lease expired").exists()
