"""How long `manage.py demo` takes to start and to stop on SIGTERM (a background demo, as `demo &`).

Starts the demo on free ports over a throw-away data directory, waits until it says
"Slipway is running", sends SIGTERM and measures until the demo process has exited
(it stops the web server, the worker and the simulator first). The tests assert
that the demo stops completely (tests/portal/test_demo_stop.py); the figures are here.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ops.simproc import free_port

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def add_arguments(parser):
    parser.add_argument("--repeat", type=int, default=3, help="demos started and stopped")
    parser.add_argument("--start-timeout", type=float, default=300, help="seconds a demo may take to start")


def _one(start_timeout: float) -> tuple[float, float, bool]:
    tmp = tempfile.mkdtemp(prefix="slipway-bench-demo-")
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    env.update(SLIPWAY_DATA_DIR=tmp, SLIPWAY_WORKERS="1")
    log_path = Path(tmp) / "demo.log"
    try:
        with open(log_path, "w") as log:
            started = time.monotonic()
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "demo", "--port", str(free_port()), "--sim-port", str(free_port()),
                 "--time-scale", "0.01"],
                cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN), start_new_session=True)
            try:
                while "Slipway is running" not in log_path.read_text():
                    if proc.poll() is not None or time.monotonic() - started > start_timeout:
                        raise RuntimeError(f"the demo did not start: {log_path.read_text()[-2000:]}")
                    time.sleep(0.05)
                ready = time.monotonic()
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=120)
                stopped = time.monotonic()
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        killed = "did not stop within" in log_path.read_text()
        return ready - started, stopped - ready, killed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(options) -> dict:
    starts, stops, killed = [], [], 0
    for _ in range(options["repeat"]):
        start, stop, was_killed = _one(options["start_timeout"])
        starts.append(round(start, 2))
        stops.append(round(stop, 2))
        killed += was_killed
    return {"repeat": options["repeat"], "start_seconds": starts, "stop_seconds": stops,
            "max_stop_seconds": max(stops), "children_killed_at_deadline": killed}
