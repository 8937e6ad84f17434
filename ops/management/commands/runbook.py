"""Runbooks from the command line, for operators and scripts.

  manage.py runbook start KIND key=value ... [--follow] [--user NAME] [--confirm]
  manage.py runbook preflight patch-cluster cluster=NAME [key=value ...]   (read-only)
  manage.py runbook skip-node RUN_ID [--user NAME]  (a patch run waiting on a failed node: resume it unpatched)
  manage.py runbook follow RUN_ID
  manage.py runbook list [--state S] [--kind K] [--limit N]
  manage.py runbook cancel RUN_ID [--user NAME]
  manage.py runbook retry|skip RUN_ID STEP [--user NAME]    (a failed step, by its # on the run page)
  manage.py runbook retry RUN_ID [--user NAME]      (a run waiting because a server could not be used)
  manage.py runbook abort RUN_ID [--user NAME]      (any run not yet ended: it undoes what it can, then fails)

--user defaults to the only operator. Exit codes: 0 done (or, with --follow, the
run succeeded); 1 the run failed or was cancelled; 2 bad input, a preflight
blocker, or warnings not confirmed with --confirm (nothing was created or changed); 3 (--follow) the run waits for the operator; 130 Ctrl-C
while following (the run goes on).
"""
import argparse
import os
import sys
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from ... import authz
from ...models import Run, RunEvent, RunSchedule, Step
from ...patching.preflight import lines as preflight_lines
from ...runbooks import registry
from ...services import runs as run_service

BAR = 10


def progress_line(run, done, total):
    filled = int(round(run.progress / 100 * BAR))
    line = f"[{'#' * filled}{'.' * (BAR - filled)}] {run.progress:3d}% "
    if not run.phase:
        return line + run.get_state_display().lower()
    line += f"phase {registry.run_phase_label(run)} — {done}/{total} steps"
    if run.state not in (Run.State.RUNNING, Run.State.SUCCEEDED):
        line += f" — {run.get_state_display().lower()}"
    return line


def started_by(run) -> str:
    """A scheduled run is credited to its schedule, not to the operator who made the schedule."""
    if run.schedule_id:
        return f"schedule:{run.schedule.name}"
    return run.created_by.get_username() if run.created_by else "-"


def positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class Command(BaseCommand):
    help = "Start, follow, list and cancel runbook runs."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="start a runbook: runbook start batch-checkpoint batch=3")
        start.add_argument("kind", help="runbook: " + ", ".join(rb.kind for rb in registry.all_runbooks()))
        start.add_argument("params", nargs="*", metavar="key=value")
        start.add_argument("--follow", action="store_true", help="print the events until the run ends")
        start.add_argument("--user", help="operator to act as (default: the only operator)")
        start.add_argument("--confirm", action="store_true",
                           help="confirm the preflight's warnings printed before the start (the VMs a patch run saves)")
        pre = sub.add_parser("preflight", help="what a run would do, read-only: runbook preflight patch-cluster cluster=CLU-B")
        pre.add_argument("kind")
        pre.add_argument("params", nargs="*", metavar="key=value")
        skip_node = sub.add_parser("skip-node", help="a patch run waiting on a failed node: resume that node "
                                                     "unpatched, bring its VMs home, go on with the next")
        skip_node.add_argument("run_id", type=int)
        skip_node.add_argument("--user")
        follow = sub.add_parser("follow", help="print a run's events until it ends")
        follow.add_argument("run_id", type=int)
        lst = sub.add_parser("list", help="list runs")
        lst.add_argument("--state", choices=[s for s, _ in Run.State.choices])
        lst.add_argument("--kind")
        lst.add_argument("--limit", type=positive, default=50)
        cancel = sub.add_parser("cancel", help="cancel a run (it cleans up, then ends)")
        cancel.add_argument("run_id", type=int)
        cancel.add_argument("--user")
        steer = []
        for verb, text in (("retry", "run a failed step again"), ("skip", "skip a failed step and go on")):
            p = sub.add_parser(verb, help=f"{text} (a run waiting for the operator)")
            p.add_argument("run_id", type=int)
            if verb == "retry":
                p.add_argument("step", type=int, nargs="?", help="the failed step's # on the run page; without it, "
                               "the run tries its servers again (it waited because one could not be used)")
            else:
                p.add_argument("step", type=int, help="the step's # on the run page")
            p.add_argument("--user")
            steer.append(p)
        abort = sub.add_parser("abort", help="give up a run in any state but ended: it undoes what it still can, "
                                             "then fails, naming what was left undone")
        abort.add_argument("run_id", type=int)
        abort.add_argument("--user")
        for p in (start, follow, lst, cancel, abort, pre, skip_node, *steer):
            p.add_argument("--poll", type=float, default=0.2, help=argparse.SUPPRESS)

    def handle(self, *args, **o):
        try:
            return getattr(self, "do_" + o["action"].replace("-", "_"))(o)
        except BrokenPipeError:   # `runbook list | head`: the reader left; say nothing more
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(141)   # 128 + SIGPIPE, as a shell tool that met a closed pipe

    # -- helpers -------------------------------------------------------------------
    def user(self, name):
        User = get_user_model()
        if name:
            user = User.objects.filter(username=name, is_active=True).first()
            if user is None:
                raise CommandError(f"no active user is named {name!r}", returncode=2)
            return user
        operators = [u for u in User.objects.filter(is_active=True).order_by("username")[:1000] if authz.allowed(u, "run.start")]
        if len(operators) != 1:
            names = ", ".join(u.get_username() for u in operators[:10]) or "none"
            raise CommandError(f"name the operator to act as with --user NAME (operators: {names})", returncode=2)
        return operators[0]

    def act(self, fn, user, *args):
        """Call a run service as ``user``; a refusal is a one-line error and exit code 2."""
        try:
            return fn(user, *args)
        except PermissionDenied as exc:
            raise CommandError(f"{user.get_username()}: {exc}", returncode=2) from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages), returncode=2) from None

    def run_by_id(self, run_id):
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run has the id {run_id}", returncode=2)
        return run

    # -- actions -------------------------------------------------------------------
    def parse_params(self, o):
        params = {}
        for item in o["params"]:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"parameter {item!r} is not key=value", returncode=2)
            if key.strip() in params:
                raise CommandError(f"parameter {key.strip()!r} is given twice ({params[key.strip()]!r} and {value!r})",
                                   returncode=2)
            params[key.strip()] = value
        return params

    def print_preflight(self, kind, params):
        """Print a runbook's preflight (those that have one); returns it, or None."""
        rb = self.act(lambda _u, k: registry.get(k), None, kind)
        if not hasattr(rb, "preview"):
            return None
        pf = self.act(lambda _u, p: rb.preview(p), None, params)
        for line in preflight_lines(pf):
            self.stdout.write(line)
        return pf

    def do_preflight(self, o):
        params = self.parse_params(o)
        pf = self.print_preflight(o["kind"], params)
        if pf is None:
            raise CommandError(f"runbook {o['kind']!r} has no preflight", returncode=2)
        if pf.blockers:
            raise CommandError(f"{len(pf.blockers)} blocker(s): a run would be refused", returncode=2)

    def do_skip_node(self, o):
        run = self.run_by_id(o["run_id"])
        self.act(run_service.skip_block, self.user(o.get("user")), run)
        self.stdout.write(f"run {run.pk}: the node is resumed unpatched and its VMs come home; then the next")

    def do_start(self, o):
        params = self.parse_params(o)
        user = self.user(o.get("user"))
        pf = self.print_preflight(o["kind"], params)
        if pf is not None and pf.warnings and "confirm" not in params:
            if not o.get("confirm"):
                raise CommandError(f"{len(pf.warnings)} warning(s) above: nothing was started; run it again with "
                                   "--confirm to accept them", returncode=2)
            params["confirm"] = ",".join(pf.warned_names())
        run = self.act(run_service.start_run, user, o["kind"], params)
        self.stdout.write(f"run {run.pk} queued: {run.title}")
        if o["follow"]:
            return self.follow(run.pk, o["poll"])
        return None

    def do_follow(self, o):
        self.run_by_id(o["run_id"])
        return self.follow(o["run_id"], o["poll"])

    def follow(self, run_id, poll):
        try:
            return self._follow(run_id, poll)
        except KeyboardInterrupt:
            self.stdout.write(f"\nstopped following; run {run_id} goes on "
                              f"(runbook follow {run_id} to watch it again, runbook cancel {run_id} to stop it)")
            sys.exit(130)

    def _follow(self, run_id, poll):
        seq, last_line = 0, None
        while True:
            run = Run.objects.get(pk=run_id)
            for ev in RunEvent.objects.filter(run_id=run_id, seq__gt=seq).order_by("seq"):
                seq = ev.seq
                if ev.level == "debug":
                    continue
                self.stdout.write(f"{ev.at:%H:%M:%S} {ev.level.upper():7} {ev.message}")
            steps = Step.objects.filter(run_id=run_id, phase=run.phase)
            line = progress_line(run, steps.filter(state__in=Step.FINAL_STATES).count(), steps.count())
            if line != last_line:
                self.stdout.write(line)
                last_line = line
            if run.state in Run.FINAL_STATES and seq >= run.last_seq:
                self.stdout.write(f"run {run.pk} {run.state}: {run.message}")
                self.stdout.flush()
                if run.state != Run.State.SUCCEEDED:
                    sys.exit(1)
                return None
            if run.state == Run.State.WAITING and seq >= run.last_seq:
                self.stdout.write(f"run {run.pk} waits for the operator: {run.message}")
                stuck = list(Step.objects.filter(run_id=run_id, phase=run.phase,
                                                 state__in=[Step.State.FAILED, Step.State.WAITING]))
                for step in stuck:
                    self.stdout.write(f"  step {step.index} ({step}): {step.error or 'waiting'}")
                if stuck:
                    self.stdout.write(f"  runbook retry {run.pk} STEP | runbook skip {run.pk} STEP | runbook abort {run.pk}")
                else:
                    self.stdout.write(f"  runbook retry {run.pk} | runbook abort {run.pk}")
                self.stdout.flush()
                sys.exit(3)
            self.stdout.flush()
            time.sleep(poll)

    def do_list(self, o):
        qs = Run.objects.all()
        if o.get("state"):
            qs = qs.filter(state=o["state"])
        if o.get("kind"):
            qs = qs.filter(kind=o["kind"])
        self.stdout.write(f"{'RUN':>6}  {'STATE':<10} {'DONE':>4}  {'CREATED (UTC)':<16}  {'STARTED BY':<20} TITLE")
        for run in qs.select_related("created_by", "schedule")[: o["limit"]]:
            self.stdout.write(f"{run.pk:>6}  {run.state:<10} {run.progress:3d}%  {run.created_at:%Y-%m-%d %H:%M}  "
                              f"{started_by(run):<20} {run.title}")
        self.list_schedules_needing_care()

    def list_schedules_needing_care(self):
        """Schedules that refused their last slot, or are paused: they start no runs, and say why."""
        troubled = RunSchedule.objects.filter(Q(enabled=False) | Q(last_slot_outcome=RunSchedule.SlotOutcome.REFUSED))
        for sched in troubled.order_by("name"):
            if not sched.enabled:
                self.stdout.write(f"schedule {sched.name!r} is paused: it starts no runs until resumed")
            else:
                self.stdout.write(f"schedule {sched.name!r} refused its slot at {sched.last_slot_at:%Y-%m-%d %H:%M} UTC: "
                                  f"{sched.last_slot_message}")

    def do_cancel(self, o):
        run = self.run_by_id(o["run_id"])
        user = self.user(o.get("user"))
        already = run.cancel_requested and run.state in Run.ACTIVE_STATES
        self.act(run_service.cancel_run, user, run)
        if already:
            self.stdout.write(f"run {run.pk}: cancel was already requested; it is cleaning up")
        else:
            self.stdout.write(f"run {run.pk}: cancel requested; it stops after the current steps, then cleans up")

    def do_abort(self, o):
        run = self.run_by_id(o["run_id"])
        self.act(run_service.abort_run, self.user(o.get("user")), run)
        self.stdout.write(f"run {run.pk}: aborted; it undoes what it still can, then fails "
                          f"(runbook follow {run.pk} shows what was left undone)")

    def do_retry(self, o):
        if o.get("step") is None:
            run = self.run_by_id(o["run_id"])
            self.act(run_service.retry_run, self.user(o.get("user")), run)
            self.stdout.write(f"run {run.pk}: tries its servers again")
            return
        step = self.step(o)
        self.act(run_service.retry_step, self.user(o.get("user")), step)
        self.stdout.write(f"run {step.run_id}: step {step.index} ({step}) runs again")

    def do_skip(self, o):
        step = self.step(o)
        self.act(run_service.skip_step, self.user(o.get("user")), step)
        self.stdout.write(f"run {step.run_id}: step {step.index} ({step}) skipped; the run goes on")

    def step(self, o):
        run = self.run_by_id(o["run_id"])
        step = Step.objects.filter(run=run, index=o["step"]).first()
        if step is None:
            raise CommandError(f"run {run.pk} has no step {o['step']} (its steps are numbered as on the run page)",
                               returncode=2)
        return step
