"""Runbooks from the command line, for operators and scripts.

  manage.py runbook start KIND key=value ... [--follow] [--user NAME]
  manage.py runbook follow RUN_ID
  manage.py runbook list [--state S] [--kind K]
  manage.py runbook cancel RUN_ID [--user NAME]

Exit codes: 0 done (or, with --follow, the run succeeded); 1 the run failed or
was cancelled; 2 bad parameters (nothing was created).
"""
import argparse
import sys
import time

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...models import Run, RunEvent, Step
from ...runbooks import registry
from ...services import runs as run_service

BAR = 10


def progress_line(run, done, total):
    filled = int(round(run.progress / 100 * BAR))
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {run.progress:3d}% phase {run.phase_label} — {done}/{total} steps"


class Command(BaseCommand):
    help = "Start, follow, list and cancel runbook runs."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="start a runbook: runbook start batch-checkpoint batch=3")
        start.add_argument("kind", help="runbook: " + ", ".join(rb.kind for rb in registry.all_runbooks()))
        start.add_argument("params", nargs="*", metavar="key=value")
        start.add_argument("--follow", action="store_true", help="print the events until the run ends")
        start.add_argument("--user", help="operator to act as (default: the only superuser)")
        follow = sub.add_parser("follow", help="print a run's events until it ends")
        follow.add_argument("run_id", type=int)
        lst = sub.add_parser("list", help="list runs")
        lst.add_argument("--state", choices=[s for s, _ in Run.State.choices])
        lst.add_argument("--kind")
        lst.add_argument("--limit", type=int, default=50)
        cancel = sub.add_parser("cancel", help="cancel a run (it cleans up, then ends)")
        cancel.add_argument("run_id", type=int)
        cancel.add_argument("--user")
        for p in (start, follow, lst, cancel):
            p.add_argument("--poll", type=float, default=0.2, help=argparse.SUPPRESS)

    def handle(self, *args, **o):
        return getattr(self, "do_" + o["action"])(o)

    # -- helpers -------------------------------------------------------------------
    def user(self, name):
        User = get_user_model()
        if name:
            user = User.objects.filter(username=name, is_active=True).first()
            if user is None:
                raise CommandError(f"no active user is named {name!r}", returncode=2)
            return user
        supers = list(User.objects.filter(is_superuser=True, is_active=True)[:2])
        if len(supers) != 1:
            raise CommandError("name the operator to act as with --user NAME", returncode=2)
        return supers[0]

    def run_by_id(self, run_id):
        run = Run.objects.filter(pk=run_id).first()
        if run is None:
            raise CommandError(f"no run has the id {run_id}", returncode=2)
        return run

    # -- actions -------------------------------------------------------------------
    def do_start(self, o):
        params = {}
        for item in o["params"]:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise CommandError(f"parameter {item!r} is not key=value", returncode=2)
            params[key.strip()] = value
        user = self.user(o.get("user"))
        try:
            run = run_service.start_run(user, o["kind"], params)
        except PermissionDenied as exc:
            raise CommandError(f"{user.get_username()}: {exc}", returncode=2) from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages), returncode=2) from None
        self.stdout.write(f"run {run.pk} queued: {run.title}")
        if o["follow"]:
            return self.follow(run.pk, o["poll"])
        return None

    def do_follow(self, o):
        self.run_by_id(o["run_id"])
        return self.follow(o["run_id"], o["poll"])

    def follow(self, run_id, poll):
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
            self.stdout.flush()
            time.sleep(poll)

    def do_list(self, o):
        qs = Run.objects.all()
        if o.get("state"):
            qs = qs.filter(state=o["state"])
        if o.get("kind"):
            qs = qs.filter(kind=o["kind"])
        for run in qs.select_related("created_by")[: o["limit"]]:
            who = run.created_by.get_username() if run.created_by else ("schedule" if run.schedule_id else "-")
            self.stdout.write(f"{run.pk:>6}  {run.state:<10} {run.progress:3d}%  {run.created_at:%Y-%m-%d %H:%M}  "
                              f"{who:<12} {run.title}")

    def do_cancel(self, o):
        run = self.run_by_id(o["run_id"])
        user = self.user(o.get("user"))
        try:
            run_service.cancel_run(user, run)
        except PermissionDenied as exc:
            raise CommandError(f"{user.get_username()}: {exc}", returncode=2) from None
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages), returncode=2) from None
        self.stdout.write(f"run {run.pk}: cancel requested; it stops after the current steps, then cleans up")
