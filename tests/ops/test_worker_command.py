"""`manage.py worker` stops on a SIGTERM that lands while its cluster is starting, the moment at which
django-q2's own `qcluster` (its handler finds the sentinel not yet started) leaves the sentinel
running and waits on it forever (ops/management/commands/worker.py). The signal is sent from inside
the process just before the sentinel is forked, so the race is hit every time."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

BASE = Path(__file__).resolve().parents[2]

HARNESS = """
import os, signal, sys
import django
django.setup()
import django_q.cluster as qc
from django.core.management import call_command
context = qc.get_mp_context()
start = context.Process.start
def start_after_a_signal(self):
    context.Process.start = start
    os.kill(os.getpid(), signal.SIGTERM)
    return start(self)
context.Process.start = start_after_a_signal
call_command("worker")
print("worker returned", flush=True)
"""


def test_a_worker_signalled_while_it_starts_stops_and_leaves_nothing_running(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SLIPWAY_DATA_DIR=str(tmp_path), SLIPWAY_WORKERS="1", DJANGO_SETTINGS_MODULE="portal.settings",
               PYTHONPATH=str(BASE))
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=BASE, env=env, check=True)
    proc = subprocess.Popen([sys.executable, "-c", HARNESS], cwd=BASE, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail("the worker did not stop on a SIGTERM received while it started:\n" + out[-3000:])
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # nothing of the cluster outlives the test
        except ProcessLookupError:
            pass
    assert proc.returncode == 0 and "worker returned" in out, out[-3000:]
