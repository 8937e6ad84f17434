"""``manage.py runbook``: start/follow/list/cancel, exit codes, clear errors."""
import pytest
from django.core.management import CommandError, call_command

from ops.models import Run, Step

from ._engine_support import Driver

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def inline(monkeypatch, settings):
    """Run each queued task at once (the run completes inside start)."""
    from ops.engine import executor, tasks

    settings.SLIPWAY_ENGINE_SLICE_SECONDS = 2.0
    settings.SLIPWAY_ENGINE_POLL_SECONDS = 0.01
    monkeypatch.setattr(executor, "enqueue", lambda run_id, token: tasks.advance_run(run_id, token))


def test_start_follow_prints_events_progress_and_exits_zero(sim, operator, inline, capsys):
    call_command("runbook", "start", "batch-checkpoint", "batch=3", "--follow", "--user", "olga", "--poll", "0.01")
    out = capsys.readouterr().out
    run = Run.objects.get()
    assert run.state == Run.State.SUCCEEDED
    assert f"run {run.pk} queued" in out
    assert "SUCCESS test07 checkpointed" in out
    assert "[##########] 100% phase all 6 done" in out
    assert f"run {run.pk} succeeded: Batch 3: checkpointed 15 of 15 VMs" in out


def test_follow_exits_non_zero_when_the_run_fails(sim, operator, inline, capsys):
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "sql03"})
    with pytest.raises(SystemExit) as exc:
        call_command("runbook", "start", "batch-checkpoint", "batch=3", "--follow", "--user", "olga", "--poll", "0.01")
    assert exc.value.code == 1
    out = capsys.readouterr().out
    assert "failed: VMM server vmm01: New-SCVMCheckpoint on sql03 failed" in out


@pytest.mark.parametrize("args, message", [
    (["batch=99"], "no such batch"),
    (["batch=3", "cloud=Nowhere"], "no cloud named 'Nowhere'"),
    (["batch"], "'batch' is not key=value"),
    (["batch=3", "batch=999"], "parameter 'batch' is given twice ('3' and '999')"),
])
def test_bad_parameters_exit_2_and_create_nothing(sim, operator, monkeypatch, args, message):
    Driver(monkeypatch)
    with pytest.raises(CommandError) as exc:
        call_command("runbook", "start", "batch-checkpoint", *args, "--user", "olga")
    assert exc.value.returncode == 2
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)
    assert not Run.objects.exists()


def test_negative_age_is_refused(sim, operator, monkeypatch):
    Driver(monkeypatch)
    with pytest.raises(CommandError, match="older_than_days must be at least 0, not -3") as exc:
        call_command("runbook", "start", "checkpoint-cleanup", "older_than_days=-3", "--user", "olga")
    assert exc.value.returncode == 2
    assert not Run.objects.exists()


def test_every_bad_parameter_is_named_in_one_line(sim, operator, monkeypatch):
    Driver(monkeypatch)
    with pytest.raises(CommandError) as exc:
        call_command("runbook", "start", "checkpoint-cleanup", "older_than_days=-3", "keep_newest=many",
                     "dry_run=maybe", "--user", "olga")
    text = str(exc.value)
    assert exc.value.returncode == 2 and "\n" not in text
    assert "older_than_days must be at least 0, not -3" in text
    assert "keep_newest must be a whole number, not 'many'" in text
    assert "dry_run must be true or false, not 'maybe'" in text
    assert not Run.objects.exists()


def test_a_tenant_may_not_start_runbooks(sim, tenant, monkeypatch):
    Driver(monkeypatch)
    with pytest.raises(CommandError, match="Only operators") as exc:
        call_command("runbook", "start", "batch-checkpoint", "batch=3", "--user", "tina")
    assert exc.value.returncode == 2


def test_list_and_cancel(sim, operator, monkeypatch, capsys):
    driver = Driver(monkeypatch)
    call_command("runbook", "start", "batch-checkpoint", "batch=2", "--user", "olga")
    run = Run.objects.get()
    call_command("runbook", "list", "--state", "queued")
    assert "Batch checkpoint: batch 2" in capsys.readouterr().out
    call_command("runbook", "cancel", str(run.pk), "--user", "olga")
    assert "cancel requested" in capsys.readouterr().out
    call_command("runbook", "cancel", str(run.pk), "--user", "olga")
    assert "cancel was already requested" in capsys.readouterr().out
    driver.drive()
    run.refresh_from_db()
    assert run.state == Run.State.CANCELLED
    call_command("runbook", "list", "--kind", "batch-checkpoint")
    assert "cancelled" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"already ended \(cancelled\)"):
        call_command("runbook", "cancel", str(run.pk), "--user", "olga")


def test_progress_line_names_the_phase_by_its_place_and_title(operator):
    from ops.management.commands.runbook import progress_line

    run = Run(kind="batch-checkpoint", phase="stop", state=Run.State.RUNNING, progress=34)
    assert progress_line(run, 2, 9) == "[###.......]  34% phase 3/6 Stop the running VMs — 2/9 steps"


def test_the_only_operator_is_the_default_user(sim, operator, tenant, monkeypatch, capsys):
    Driver(monkeypatch)
    call_command("runbook", "start", "batch-checkpoint", "batch=3")
    assert Run.objects.get().created_by == operator


def test_with_two_operators_the_cli_asks_which(sim, operator, make_user, monkeypatch):
    Driver(monkeypatch)
    make_user("otto", "operator")
    with pytest.raises(CommandError, match=r"--user NAME \(operators: olga, otto\)") as exc:
        call_command("runbook", "start", "batch-checkpoint", "batch=3")
    assert exc.value.returncode == 2 and not Run.objects.exists()


def test_list_limit_must_be_positive(operator):
    with pytest.raises(CommandError, match="must be at least 1, got -1"):
        call_command("runbook", "list", "--limit", "-1")


def test_follow_stops_at_a_run_waiting_for_the_operator_who_then_retries_from_the_cli(sim, operator, inline, capsys):
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "sql03", "times": 1})
    with pytest.raises(SystemExit) as exc:
        call_command("runbook", "start", "batch-checkpoint", "batch=3", "on_error=wait", "--follow", "--user", "olga",
                     "--poll", "0.01")
    assert exc.value.code == 3
    out = capsys.readouterr().out
    run = Run.objects.get()
    failed = run.steps.get(state=Step.State.FAILED)
    assert f"run {run.pk} waits for the operator" in out and f"step {failed.index} (" in out
    assert f"runbook retry {run.pk} STEP" in out
    with pytest.raises(CommandError, match=f"run {run.pk} has no step 999"):
        call_command("runbook", "retry", str(run.pk), "999", "--user", "olga")
    ok = run.steps.filter(state=Step.State.SUCCEEDED).first()
    with pytest.raises(CommandError, match="only a failed step of a run waiting for the operator"):
        call_command("runbook", "skip", str(run.pk), str(ok.index), "--user", "olga")
    call_command("runbook", "retry", str(run.pk), str(failed.index), "--user", "olga")
    assert f"step {failed.index} (" in capsys.readouterr().out
    call_command("runbook", "follow", str(run.pk), "--poll", "0.01")
    run.refresh_from_db()
    assert run.state == Run.State.SUCCEEDED


def test_abort_from_the_cli(sim, operator, inline, capsys):
    sim.control({"op": "fault", "cmdlet": "New-SCVMCheckpoint", "target": "sql03"})
    call_command("runbook", "start", "batch-checkpoint", "batch=3", "on_error=wait", "--user", "olga")
    run = Run.objects.get()
    assert Run.objects.get().state == Run.State.WAITING
    call_command("runbook", "abort", str(run.pk), "--user", "olga")
    assert "aborted" in capsys.readouterr().out
    with pytest.raises(CommandError, match=r"has already ended \(failed\)"):
        call_command("runbook", "abort", str(run.pk), "--user", "olga")


def test_ctrl_c_while_following_leaves_the_run_going(sim, operator, monkeypatch, capsys):
    Driver(monkeypatch)
    call_command("runbook", "start", "batch-checkpoint", "batch=3", "--user", "olga")
    run = Run.objects.get()

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("ops.management.commands.runbook.time.sleep", interrupted)
    with pytest.raises(SystemExit) as exc:
        call_command("runbook", "follow", str(run.pk))
    assert exc.value.code == 130
    assert f"stopped following; run {run.pk} goes on" in capsys.readouterr().out
    run.refresh_from_db()
    assert run.state == Run.State.QUEUED and not run.cancel_requested
