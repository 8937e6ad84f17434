"""The engine's plans (issue 9 §1): phases made at start and kept with the run, blocks of phases
per target with their own compensation, waits that hold no worker, automatic retries, host and
cluster holds, the runbook's own namespace. Driven through the real task entry point against
the simulator's VMM connection, with a small runbook of its own."""
import time

import pytest

from ops.engine import waits
from ops.models import Run, Step
from ops.runbooks import registry
from ops.runbooks.base import Outcome, Phase, Plan, Prepared, Runbook, StepSpec
from ops.runbooks.registry import phases_of
from ops.services import runs as run_service
from ._engine_support import driver, events  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db(transaction=True)
ATTEMPTS: dict = {}


class Blocks(Runbook):
    """Per block X: work-X, then undo-X (always, X's compensation); then a global 'final' (always)."""
    kind = "test-blocks"
    title = "Blocks"
    param_names = ("blocks", "fail", "max_failed", "wait_s", "deadline_s", "on_error", "flaky", "hold", "poll")

    def prepare(self, raw, check_fabric=True):
        from ops.models import ServerConnection

        blocks = [b for b in raw.get("blocks", "a,b,c").split(",") if b]
        conn = ServerConnection.objects.get(kind="vmm", name="vmm01")
        params = {"blocks": blocks, "fail": raw.get("fail", ""), "max_failed": int(raw.get("max_failed", 1)),
                  "wait_s": float(raw.get("wait_s", 0)), "deadline_s": raw.get("deadline_s"),
                  "on_error": raw.get("on_error", "compensate"), "flaky": raw.get("flaky", ""), "poll": float(raw.get("poll", 0.3))}
        hold = raw.get("hold", "X")
        return Prepared(params, conn, f"Blocks {hold}", f"blocks:{hold}", [],
                        holds=[f"cluster:{hold}"] + [f"host:{b}" for b in blocks])

    def make_phases(self, run):
        out = []
        for b in run.params["blocks"]:
            out += [Phase(f"work@{b}", f"Work on {b}", block=f"node {b}"),
                    Phase(f"undo@{b}", f"Undo {b}", always=True, block=f"node {b}")]
        return out + [Phase("final", "Final", always=True)]

    def plan(self, phase, run):
        name, _, b = phase.name.partition("@")
        data = {"retries": 1, "retry_delay": 0.05} if b == run.params["flaky"] else {}
        return Plan([StepSpec(name, b or "all", data=data)])

    def after_block_failure(self, run, block, failed_blocks):
        return "continue" if len(failed_blocks) < run.params["max_failed"] else "stop"

    def do_work(self, c):
        if c.target == c.params["flaky"]:
            ATTEMPTS[c.run_id] = ATTEMPTS.get(c.run_id, 0) + 1
            if ATTEMPTS[c.run_id] == 1:
                return Outcome.failed(f"work on {c.target} failed the first time")
        if c.target in c.params["fail"].split(","):
            return Outcome.failed(f"work on {c.target} failed")
        ready = c.created_at.timestamp() + c.params["wait_s"]
        if time.time() < ready:
            deadline = c.params["deadline_s"]
            return Outcome.wait(f"waiting for the clock on {c.target}", poll=c.params["poll"],
                                deadline=float(deadline) if deadline else None)
        return Outcome.done(f"worked on {c.target}", context={f"worked-{c.target}": True})

    def do_undo(self, c):
        return Outcome.done(f"undid {c.target}")

    def do_final(self, c):
        return Outcome.done("final")


@pytest.fixture
def blocks(sim):
    registry.register(Blocks())
    yield
    registry.unregister("test-blocks")


def start(operator, **params):
    return run_service.start_run(operator, "test-blocks", {k: str(v) for k, v in params.items()})


def steps_of(run):
    return list(run.steps.order_by("index").values_list("action", "target", "state", "compensation"))


def test_the_plan_is_kept_with_the_run_and_every_block_runs_in_order(blocks, operator, driver):
    run = start(operator)
    assert [p.name for p in phases_of(run)][:3] == ["work@a", "undo@a", "work@b"]
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert [(a, t) for a, t, _, _ in steps_of(run)] == [("work", "a"), ("undo", "a"), ("work", "b"), ("undo", "b"),
                                                       ("work", "c"), ("undo", "c"), ("final", "all")]
    assert run.context["runbook"] == {"worked-a": True, "worked-b": True, "worked-c": True}
    assert "worked-a" not in run.context["engine"]
    assert any(e.startswith("Phase 3/7: Work on b") for e in events(run))


def test_a_failed_block_is_undone_and_the_run_goes_on_while_failures_are_allowed(blocks, operator, driver):
    run = start(operator, fail="b", max_failed=2)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    got = steps_of(run)
    assert ("work", "b", "failed", False) in got and ("undo", "b", "succeeded", True) in got
    assert ("work", "c", "succeeded", False) in got, "the next block still ran"
    assert any("node b failed (work on b failed): undoing what it changed, then the run goes on" in e for e in events(run))


def test_reaching_max_failed_stops_before_the_next_block_and_never_undoes_it(blocks, operator, driver):
    run = start(operator, fail="b", max_failed=1)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    targets = [(a, t) for a, t, _, _ in steps_of(run)]
    assert targets == [("work", "a"), ("undo", "a"), ("work", "b"), ("undo", "b"), ("final", "all")]
    assert "work on b failed" in run.message


def test_a_wait_holds_no_worker_and_ends_when_the_condition_holds(blocks, operator, driver):
    run = start(operator, blocks="a", wait_s=3, poll=3)
    driver.drive()   # the run gives its worker back while it waits: the queue empties
    run.refresh_from_db()
    assert run.state == Run.State.RUNNING and run.lease_owner == ""
    step = run.steps.get(action="work")
    assert step.state == Step.State.RUNNING and step.job_id == waits.WAIT
    driver.drive(rests=True)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert sum("waiting for the clock on a" in e for e in events(run)) == 1, "one event per reason, not per look"


def test_a_wait_past_its_deadline_fails_naming_what_it_waited_for(blocks, operator, driver):
    run = start(operator, blocks="a", wait_s=600, deadline_s=1)
    driver.drive(rests=True)
    run.refresh_from_db()
    assert run.state == Run.State.FAILED
    assert "waiting for the clock on a; gave up after 1 s" in run.steps.get(action="work").error


def test_cancel_abandons_a_wait_at_once(blocks, operator, driver):
    run = start(operator, blocks="a,b", wait_s=600, poll=30)
    driver.drive()
    run_service.cancel_run(operator, run)
    driver.drive(rests=True)
    run.refresh_from_db()
    assert run.state == Run.State.CANCELLED
    assert ("work", "a", "cancelled", False) in steps_of(run) and ("undo", "a", "succeeded", True) in steps_of(run)
    assert not run.steps.filter(target="b").exists(), "a block that never began is not undone"


def test_a_step_retries_by_itself_before_its_failure_counts(blocks, operator, driver):
    run = start(operator, blocks="a", flaky="a")
    driver.drive(rests=True)
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED, run.message
    assert any("failed the first time; trying again (1 of 1)" in e for e in events(run))


def test_the_operator_skips_a_failed_block_and_the_run_goes_on(blocks, operator, driver):
    run = start(operator, fail="b", on_error="wait")
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.WAITING and "skip the node" in run.message
    run_service.skip_block(operator, run)
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED
    got = steps_of(run)
    assert ("work", "b", "skipped", False) in got and ("undo", "b", "succeeded", True) in got
    assert ("work", "c", "succeeded", False) in got
    assert "work on b failed" in run.message, "a skipped failure is named in the outcome"


def test_skip_block_is_refused_when_the_run_waits_on_no_block(blocks, operator, driver):
    from django.core.exceptions import ValidationError

    run = start(operator, blocks="a", wait_s=600, poll=30)
    driver.drive()
    with pytest.raises(ValidationError, match="not waiting on a failed step of a node"):
        run_service.skip_block(operator, run)


def test_two_runs_never_hold_the_same_cluster_or_host(blocks, operator, driver):
    first = start(operator, blocks="a", wait_s=600, hold="X", poll=30)
    with pytest.raises(run_service.RunConflict, match=rf"Run {first.pk} \(Blocks X\) is still queued and holds X"):
        start(operator, blocks="z", hold="X")
    with pytest.raises(run_service.RunConflict, match="holds a"):
        start(operator, blocks="a", hold="Y")
    other = start(operator, blocks="q", hold="Y")
    assert other.pk != first.pk
    assert Run.objects.count() == 2
