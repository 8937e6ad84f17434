"""`manage.py worker`: django-q2's cluster (``qcluster``) that stops on SIGTERM / SIGINT at any moment.

``qcluster`` installs its stop handler before it starts the sentinel, then polls the sentinel's
start event. A signal that lands while that poll holds the event's lock runs the handler, which joins
the sentinel, which is blocked setting the same event: the process hangs until it is killed (seen
in tests/portal/test_demo_stop.py when the demo was stopped the instant it said it was running).
Here a signal that arrives while the cluster starts is only noted; it is acted on once the start
has returned, when no lock is held. Everything else is django-q2's own ``Cluster``.
"""
import signal
import time

from django.core.management.base import BaseCommand
from django_q.cluster import Cluster

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Command(BaseCommand):
    help = "Run a Slipway worker (a django-q2 cluster: runs, schedules, inventory sync)."

    def handle(self, *args, **options):
        asked: list[int] = []

        def note(signum, _frame):
            asked.append(signum)

        # Cluster() installs its handler, which fails before the sentinel exists: no signal until ours is in
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            cluster = Cluster()
            for sig in STOP_SIGNALS:
                signal.signal(sig, note)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        if asked:
            return
        cluster.start()
        for sig in STOP_SIGNALS:
            signal.signal(sig, cluster.sig_handler)
        if asked:
            cluster.sig_handler(asked[0], None)
        # is_alive() polls (waitpid WNOHANG): a signal now runs the handler, which joins the sentinel
        while cluster.sentinel.is_alive():
            time.sleep(0.5)
